"""Input/output: FITS utilities, the model format, spectra readers and writers, Keras HDF5 reading.

:mod:`~surveynet.io.spectra` is the spectra front door (:func:`~surveynet.io.spectra.read_spectra`
dispatching to :mod:`~surveynet.io.desi` and :mod:`~surveynet.io.boss`, which share the
:class:`~surveynet.io.container.Spectra` container). Nothing here imports a pipeline.
"""
