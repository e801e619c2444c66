"""Registrations of the dla core (architectures, numpy engines, convert, bench)."""
