"""Rest-frame line table of QuasarNET and the default head-to-line mapping.

The wavelengths (vacuum, Angstrom) are the ``absorber_IGM`` table shared by
ngbusca/QuasarNET:py/quasarnet/utils.py, dylanagreen/QuasarNET and
desihub/QuasarNP:quasarnp/utils.py
(spec quasarnet.md §4.4). The head -> line mapping is *not* stored in the original Keras weights: by
convention heads 0-5 are :data:`DEFAULT_LINES` and head 6 is the BAL head tied to ``CIV(1548)``
(``qn_export``, QuasarNP, desispec, quasarnet_paper_2025 columns ``C_LYA`` ... ``C_CIV_BAL``).
surveynet stores the mapping in every model's ``config.json``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from surveynet.constants import LYA_ROUNDED, LYB_ROUNDED

#: Rest wavelengths in Angstrom (vacuum), keyed by QuasarNET's line names (39 entries); H I
#: Lyman-alpha and -beta are the package constants rounded to 0.01 A as in QuasarNET's table
#: (ngbusca/QuasarNET:py/quasarnet/utils.py ``absorber_IGM``;
#: :data:`surveynet.constants.LYA_ROUNDED`), the values the bundled and original models used.
ABSORBER_IGM: dict[str, float] = {
    "Halpha": 6562.8,
    "OIII(5008)": 5008.24,
    "OIII(4933)": 4932.68,
    "Hbeta": 4862.68,
    "MgI(2853)": 2852.96,
    "MgII(2804)": 2803.5324,
    "MgII(2796)": 2796.3511,
    "FeII(2600)": 2600.1724835,
    "FeII(2587)": 2586.6495659,
    "MnII(2577)": 2576.877,
    "FeII(2383)": 2382.7641781,
    "FeII(2374)": 2374.4603294,
    "FeII(2344)": 2344.2129601,
    "CIII(1909)": 1908.734,
    "AlIII(1863)": 1862.79113,
    "AlIII(1855)": 1854.71829,
    "AlII(1671)": 1670.7886,
    "FeII(1608)": 1608.4511,
    "CIV(1551)": 1550.77845,
    "CIV(eff)": 1549.06,
    "CIV(1548)": 1548.2049,
    "SiII(1527)": 1526.70698,
    "SiIV(1403)": 1402.77291,
    "SiIV(1394)": 1393.76018,
    "CII(1335)": 1334.5323,
    "SiII(1304)": 1304.3702,
    "OI(1302)": 1302.1685,
    "SiII(1260)": 1260.4221,
    "NV(1243)": 1242.804,
    "NV(1239)": 1238.821,
    "LYA": LYA_ROUNDED,
    "SiIII(1207)": 1206.500,
    "NI(1200)": 1200.0,
    "SiII(1193)": 1193.2897,
    "SiII(1190)": 1190.4158,
    "OI(1039)": 1039.230,
    "OVI(1038)": 1037.613,
    "OVI(1032)": 1031.912,
    "LYB": LYB_ROUNDED,
}

#: Emission-line heads 0-5 of every published QuasarNET model.
DEFAULT_LINES: tuple[str, ...] = ("LYA", "CIV(1548)", "CIII(1909)", "MgII(2796)", "Hbeta", "Halpha")
#: BAL head(s), after the emission-line heads.
DEFAULT_LINES_BAL: tuple[str, ...] = ("CIV(1548)",)


def rest_wavelength(name: str) -> float:
    """Rest wavelength (Angstrom) of a QuasarNET line name.

    Parameters
    ----------
    name : str
        A key of :data:`ABSORBER_IGM`, e.g. ``"CIV(1548)"``.

    Returns
    -------
    float

    Raises
    ------
    KeyError
        Unknown name (the message lists the known ones).

    Examples
    --------
    >>> rest_wavelength("LYA")
    1215.6701
    """
    try:
        return ABSORBER_IGM[name]
    except KeyError:
        raise KeyError(f"unknown line {name!r}; known: {', '.join(ABSORBER_IGM)}") from None


def rest_wavelengths(names: Sequence[str]) -> list[float]:
    """Rest wavelengths (Angstrom) of several line names, in order.

    Parameters
    ----------
    names : sequence of str
        Keys of :data:`ABSORBER_IGM`.

    Returns
    -------
    list of float

    Raises
    ------
    KeyError
        An unknown name.

    Examples
    --------
    >>> rest_wavelengths(["CIV(1548)", "Hbeta"])
    [1548.2049, 4862.68]
    """
    return [rest_wavelength(n) for n in names]


def line_label(name: str, *, bal: bool = False) -> str:
    """Upper-case catalogue label of a line: ``"CIV(1548)"`` -> ``"CIV"``, BAL -> ``"CIV_BAL"``.

    The wavelength in brackets is dropped, as in the quasarnet_paper_2025 and desispec columns
    (``C_LYA``, ``C_CIV``, ``C_CIII``, ``C_MGII``, ``C_HBETA``, ``C_HALPHA``, ``C_CIV_BAL``).

    Parameters
    ----------
    name : str
        QuasarNET line name.
    bal : bool
        Label of a BAL head.

    Returns
    -------
    str

    Examples
    --------
    >>> [line_label(n) for n in DEFAULT_LINES]
    ['LYA', 'CIV', 'CIII', 'MGII', 'HBETA', 'HALPHA']
    >>> line_label("CIV(1548)", bal=True)
    'CIV_BAL'
    """
    base = re.sub(r"\(.*\)$", "", name).upper()
    base = re.sub(r"[^A-Z0-9]+", "_", base).strip("_")
    return f"{base}_BAL" if bal else base
