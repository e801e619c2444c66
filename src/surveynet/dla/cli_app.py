"""Registrations of the dla application steps (train, predict, evaluate, demo)."""
