"""Physical constants used across surveynet, each defined once, with its source.

Pipelines and the simulator import these names; no module defines its own copy.

Examples
--------
>>> round(C_KMS * 1000.0)
299792458
>>> round(LYA_REST / LYB_REST, 4)
1.1852
>>> C_AA_S == 2.99792458e18
True
>>> LYA_ROUNDED, LYB_ROUNDED, LYG_ROUNDED
(1215.67, 1025.72, 972.54)
"""

from __future__ import annotations

#: Speed of light in vacuum (km/s); exact by the SI definition of the metre (CODATA 2018).
C_KMS = 299792.458
#: Speed of light in vacuum (m/s).
C_MS = C_KMS * 1000.0
#: Speed of light in vacuum (Angstrom/s).
C_AA_S = C_KMS * 1e13

#: H I Lyman-alpha rest wavelength in vacuum (A), the doublet's weighted mean (Morton 2003,
#: ApJS 149, 205; NIST ASD).
LYA_REST = 1215.6701
#: H I Lyman-beta rest wavelength in vacuum (A) (Morton 2003).
LYB_REST = 1025.7223
#: H I Lyman-gamma rest wavelength in vacuum (A) (Morton 2003).
LYG_REST = 972.5368
#: The Lyman-series wavelengths rounded to 0.01 A (1215.67, 1025.72, 972.54): the precision of
#: the simulator's line tables and of the Voigt profiles the bundled DLA models were trained and
#: calibrated with (vetter features, catalogue core widths). Moving those to the exact values
#: changes the seeded mocks (up to 4e-6 in flux) and the demo DLA catalogue (up to 2.9e-5 in
#: DLA_CONFIDENCE), so they use these until the bundled models are retrained.
LYA_ROUNDED = round(LYA_REST, 2)
LYB_ROUNDED = round(LYB_REST, 2)
LYG_ROUNDED = round(LYG_REST, 2)
#: H I Lyman limit (A), the series limit 1/R_H (Morton 2003).
LYMAN_LIMIT = 911.75

#: Oscillator strengths of H I Lyman-alpha, -beta and -gamma (Morton 2003).
F_LYA = 0.4164
F_LYB = 0.07912
F_LYG = 0.02900
#: Damping constants of H I Lyman-alpha, -beta and -gamma (s^-1) (Morton 2003).
GAMMA_LYA = 6.265e8
GAMMA_LYB = 1.897e8
GAMMA_LYG = 8.127e7
#: Classical absorption cross-section per unit oscillator strength, pi e^2 / (m_e c)
#: (cm^2 Hz), CGS (e.g. Draine 2011, Physics of the ISM, eq. 6.13).
PI_E2_MEC = 0.02654
#: Hydrogen photo-ionisation cross-section at the Lyman limit (cm^2) (Osterbrock & Ferland 2006).
SIGMA_LL = 6.30e-18

#: log10 N_HI (cm^-2) above which an absorber is a damped Lyman-alpha system (Wolfe et al. 2005).
DLA_LOG_NHI_MIN = 20.3
