"""Seeded mock-data generators (spectra; HEALPix maps and images to come)."""
