"""Registrations of the quasar core (architectures, numpy engines, convert, bench)."""
