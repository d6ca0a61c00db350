"""Recurring tasks: cron and interval timing, a schedule's checks, and the loop that turns ticks into tasks."""
