"""``python -m surveynet``."""

from surveynet.cli import main

raise SystemExit(main())
