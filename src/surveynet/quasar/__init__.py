"""surveynet.quasar pipeline. Registrations only: nothing heavy (and never torch) is imported here."""

from surveynet.quasar import cli_app, cli_core  # noqa: F401  (register steps, architectures, benches, demo)
