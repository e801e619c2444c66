"""Registrations of the simulate steps and the spectra benchmark."""
