"""``python -m surveynet``."""

from surveynet.cli import main

if __name__ == "__main__":  # not when imported (e.g. by the documentation's autosummary)
    raise SystemExit(main())
