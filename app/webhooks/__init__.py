"""Webhooks: who hears of a final state, the checks on their URLs, signing, and the sender every worker runs."""
