"""Shared neural-network utilities: the numpy layer ops and the torch training loop.

:mod:`surveynet.nn.numpy_ops` never imports torch; :mod:`surveynet.nn.loop` does (``train`` extra).
"""
