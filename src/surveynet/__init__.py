"""surveynet: neural networks for survey astronomy in one package.

Pipelines: ``quasar`` (QuasarNET), ``dla`` (damped Lyman-alpha finder), ``sysnet`` and
``transient`` (planned). See ``surveynet --help``.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
