"""Registrations of the quasar application steps (train, predict, evaluate, demo)."""
