"""surveynet.dla pipeline. Registrations only: nothing heavy (and never torch) is imported here."""

from surveynet.dla import cli_app, cli_core  # noqa: F401  (register steps, architectures, benches, demo)
