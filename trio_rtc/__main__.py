"""``python -m trio_rtc``: the command line (see :mod:`trio_rtc.cli`)."""

from trio_rtc.cli import main

raise SystemExit(main())
