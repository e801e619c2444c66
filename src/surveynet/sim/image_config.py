"""Settings of the image-pair simulator (:mod:`surveynet.sim.images`), importable without numpy.

Kept apart from the simulator so that configs and ``--help`` import nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImageSimConfig"]


@dataclass(frozen=True, kw_only=True)
class ImageSimConfig:
    """Settings of the image-pair simulator (design defaults of simulation.md section 7).

    Attributes
    ----------
    n_images : int
        Number of pairs.
    ny, nx : int
        Frame shape (px).
    pixscale : float
        arcsec per pixel.
    gain, read_noise : float
        e-/ADU and e- (per exposure).
    sky : float
        Sky level of the science frame (ADU).
    sky_gradient : float
        Linear sky gradient across the frame (fraction of the sky level).
    ref_depth : float
        The reference is this many times deeper (a stack): its noise is lower by sqrt(ref_depth).
    zp : float
        Zero point (mag) of both frames (ADU per exposure).
    zp_offset : float
        Maximum science zero-point offset (mag), uniform in [-zp_offset, zp_offset].
    fwhm_ref : tuple of float
        Reference FWHM range (px) at the frame centre.
    fwhm_ratio : tuple of float
        FWHM_sci / FWHM_ref range.
    fwhm_variation : float
        Maximum linear FWHM change from the centre to an edge (fraction).
    beta : tuple of float
        Moffat beta range.
    max_ellipticity : float
        Maximum PSF ellipticity.
    n_stars : int
        Stars per frame.
    star_mags : tuple of float
        Star magnitude range.
    n_galaxies : int
        Galaxies per frame.
    galaxy_mags : tuple of float
        Galaxy magnitude range.
    n_transients : int
        Transients per science frame.
    transient_mags : tuple of float
        Transient magnitude range (uniform).
    host_fraction : float
        Fraction of the transients on galaxy hosts.
    n_variables : int
        Variable stars (flux change by 0.3-1 mag in the science frame).
    n_cosmics, n_hot : int
        Cosmic rays and hot pixels in the science frame.
    n_bad_columns : int
        Bad columns (partial or full) in the science frame.
    n_saturated : int
        Saturated stars (both frames) with bleed trails.
    saturation : float
        Saturation level (ADU).
    max_shift : float
        Maximum science-frame shift (px) on each axis.
    max_rotation : float
        Maximum science-frame rotation (degrees).
    stamp : int
        Side of the rendered point-source stamps (px, odd).
    filter : str
        ``FILTER`` header value.
    seed : int
        Random seed.
    """

    n_images: int = 1
    ny: int = 512
    nx: int = 512
    pixscale: float = 1.0
    gain: float = 2.0
    read_noise: float = 7.0
    sky: float = 1000.0
    sky_gradient: float = 0.05
    ref_depth: float = 4.0
    zp: float = 28.0
    zp_offset: float = 0.05
    fwhm_ref: tuple[float, float] = (2.2, 3.0)
    fwhm_ratio: tuple[float, float] = (0.8, 1.4)
    fwhm_variation: float = 0.1
    beta: tuple[float, float] = (2.5, 4.765)
    max_ellipticity: float = 0.08
    n_stars: int = 250
    star_mags: tuple[float, float] = (14.0, 23.0)
    n_galaxies: int = 40
    galaxy_mags: tuple[float, float] = (17.0, 21.0)
    n_transients: int = 30
    transient_mags: tuple[float, float] = (17.0, 23.0)
    host_fraction: float = 0.5
    n_variables: int = 4
    n_cosmics: int = 15
    n_hot: int = 15
    n_bad_columns: int = 1
    n_saturated: int = 2
    saturation: float = 65535.0
    max_shift: float = 0.5
    max_rotation: float = 0.05
    stamp: int = 31
    filter: str = "r"
    seed: int = 0
