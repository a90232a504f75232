"""``python -m cleaner`` is the ``cleaner`` command."""

from cleaner.cli import main

raise SystemExit(main())
