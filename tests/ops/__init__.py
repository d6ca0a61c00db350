"""The two commands and deployment: `make run`'s launcher and embedded Redis, the systemd units."""
