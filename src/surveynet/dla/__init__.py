"""surveynet.dla pipeline: registrations only (nothing heavy, never torch, is imported here)."""

from surveynet.dla import cli_app, cli_core  # noqa: F401  (registrations)
