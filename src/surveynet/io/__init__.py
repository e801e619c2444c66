"""Input/output: FITS utilities, the model format, spectra readers and writers, converters."""
