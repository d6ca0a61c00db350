"""`python -m launcher` (what `make run` runs)."""

from launcher.stack import main

raise SystemExit(main())
