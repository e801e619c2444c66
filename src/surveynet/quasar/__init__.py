"""surveynet.quasar pipeline: registrations only (nothing heavy, never torch, is imported here)."""

from surveynet.quasar import cli_app, cli_core  # noqa: F401  (registrations)
