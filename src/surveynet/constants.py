"""Physical constants used across surveynet, each defined once, with its source.

Pipelines and the simulator import these names; no module defines its own copy.

Examples
--------
>>> round(C_KMS * 1000.0)
299792458
>>> round(LYA_REST / LYB_REST, 4)
1.1852
"""

from __future__ import annotations

#: Speed of light in vacuum (km/s); exact by the SI definition of the metre (CODATA 2018).
C_KMS = 299792.458
#: Speed of light in vacuum (m/s).
C_MS = C_KMS * 1000.0

#: H I Lyman-alpha rest wavelength in vacuum (A), the doublet's weighted mean (Morton 2003,
#: ApJS 149, 205; NIST ASD).
LYA_REST = 1215.6701
#: H I Lyman-beta rest wavelength in vacuum (A) (Morton 2003).
LYB_REST = 1025.7223
#: H I Lyman limit (A), the series limit 1/R_H (Morton 2003).
LYMAN_LIMIT = 911.75

#: Oscillator strengths of H I Lyman-alpha and Lyman-beta (Morton 2003).
F_LYA = 0.4164
F_LYB = 0.07912
#: Damping constants of H I Lyman-alpha and Lyman-beta (s^-1) (Morton 2003).
GAMMA_LYA = 6.265e8
GAMMA_LYB = 1.897e8
#: Hydrogen photo-ionisation cross-section at the Lyman limit (cm^2) (Osterbrock & Ferland 2006).
SIGMA_LL = 6.30e-18

#: log10 N_HI (cm^-2) above which an absorber is a damped Lyman-alpha system (Wolfe et al. 2005).
DLA_LOG_NHI_MIN = 20.3
