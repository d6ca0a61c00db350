"""The dashboard in Debian's chromium against the real app and worker (marked slow and browser)."""
