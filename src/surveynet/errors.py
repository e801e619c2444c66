"""Domain exceptions.

Every error raised on bad input names the file and the HDU, column or argument at fault, so a
user can see at once what to fix.
"""

from __future__ import annotations

import os


class SurveynetError(Exception):
    """Base class of surveynet errors."""


class InputError(SurveynetError, ValueError):
    """Bad input data: unreadable file, missing HDU or column, mis-shaped or invalid values.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or os.PathLike, optional
        The file at fault.
    hdu : str, optional
        The HDU (EXTNAME) at fault.
    column : str, optional
        The column or field at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        hdu: str | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.hdu = hdu
        self.column = column
        where = []
        if self.path is not None:
            where.append(self.path)
        if hdu is not None:
            where.append(f"HDU {hdu}")
        if column is not None:
            where.append(f"column {column}")
        prefix = (": ".join([", ".join(where), ""])) if where else ""
        super().__init__(f"{prefix}{message}")


class ConfigError(SurveynetError, ValueError):
    """Invalid configuration: unknown key, wrong type, bad override."""


class ModelFormatError(SurveynetError, ValueError):
    """A model directory with missing files, an unknown architecture or mismatched tensors."""
