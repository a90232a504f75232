"""`python -m cleaner.emulator ...`: the same as `cleaner emulator ...`."""

from cleaner.emulator.command import main

raise SystemExit(main())
