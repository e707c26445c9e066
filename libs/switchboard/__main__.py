"""Run the `switchboard` command line with `python -m switchboard`."""

from switchboard.cli import main

raise SystemExit(main())
