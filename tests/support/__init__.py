"""Helpers the tests share: app servers on free ports, worker processes, chromium, a multi-host topology, waits on real state."""
