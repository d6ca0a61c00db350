"""Chaos and fuzzing: killed workers, Redis and database outages, several hosts, random use (marked slow)."""
