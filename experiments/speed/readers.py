"""fitsio vs astropy vs surveynet's reader on one DESI coadd: the measurements behind issue 22.

Reads the HDUs quasar/DLA prediction needs (FLUX, IVAR, MASK, WAVELENGTH of b/r/z, FIBERMAP)
and, for scale, everything (RESOLUTION included), with

- astropy.io.fits (``memmap=False``; ``.data`` then a native-byte-order copy),
- fitsio (``FITS[ext].read()``; optional, skipped when not installed),
- surveynet's reader (:func:`surveynet.io.spectra.read_spectra`: astropy for the headers, then
  one ``readinto`` per HDU and an in-place byte swap; DATASUM verified on the bytes read),

each timed with :func:`surveynet.bench.time_call` (best of 3 single calls after a warm-up; the
file is in the page cache). Also reports the cost of verifying checksums both ways.

usage: python experiments/speed/readers.py [COADD]   (default /tmp/sp2000/coadd-000.fits, made
with ``surveynet simulate spectra --n 2000 --seed 5 --n-files 1 --out /tmp/sp2000``)
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from surveynet.bench import time_call

PATH = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sp2000/coadd-000.fits"
PREDICT_HDUS = [f"{b}_{p}" for b in "BRZ" for p in ("WAVELENGTH", "FLUX", "IVAR", "MASK")]
ALL_HDUS = PREDICT_HDUS + [f"{b}_RESOLUTION" for b in "BRZ"]


def timed(label: str, fn, n_spec: int) -> None:
    """Print seconds per call and spectra per second."""
    t = time_call(fn, min_time=0.0, repeat=3)
    print(f"  {label:<52s} {t * 1e3:8.1f} ms  {n_spec / t:9.0f} spectra/s", flush=True)


def main() -> None:
    """Run the comparison."""
    t0 = time.perf_counter()
    from astropy.io import fits
    from astropy.table import Table

    t_astropy = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        import fitsio

        t_fitsio = time.perf_counter() - t0
    except ImportError:
        fitsio = None
    from surveynet.io.spectra import read_spectra

    with open(PATH, "rb") as fh:
        fh.read()  # page cache
    with fits.open(PATH) as h:
        n = int(h["FIBERMAP"].header["NAXIS2"])
    print(
        f"{PATH}: {os.path.getsize(PATH) / 1e6:.0f} MB, {n} spectra; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  import astropy.io.fits + Table {t_astropy * 1e3:.0f} ms"
        + ("" if fitsio is None else f"; import fitsio {t_fitsio * 1e3:.0f} ms")
    )

    def astropy_read(names):
        with fits.open(PATH, memmap=False, lazy_load_hdus=False) as h:
            out = {}
            for x in names:
                d = h[x].data
                out[x] = d.astype(d.dtype.newbyteorder("="))
            out["FIBERMAP"] = Table.read(h["FIBERMAP"])
        return out

    def fitsio_read(names):
        with fitsio.FITS(PATH) as h:
            out = {x: h[x].read() for x in names}
            out["FIBERMAP"] = h["FIBERMAP"].read()
        return out

    for label, names in (("prediction HDUs", PREDICT_HDUS), ("all HDUs", ALL_HDUS)):
        print(f"{label}:")
        timed("astropy (memmap=False, native copy)", lambda names=names: astropy_read(names), n)
        if fitsio is not None:
            timed("fitsio", lambda names=names: fitsio_read(names), n)
        res = label == "all HDUs"
        timed(
            "surveynet read_spectra (checksums verified)",
            lambda res=res: read_spectra(PATH, resolution=res),
            n,
        )
        timed(
            "surveynet read_spectra (checksum=False)",
            lambda res=res: read_spectra(PATH, resolution=res, checksum=False),
            n,
        )
    print("checksums of the prediction HDUs:")

    def astropy_checksums():
        with fits.open(PATH, checksum=True, memmap=False) as h:
            for x in PREDICT_HDUS:
                _ = h[x].data

    timed("astropy fits.open(checksum=True) (verifies every HDU)", astropy_checksums, n)
    if fitsio is not None:

        def fitsio_checksums():
            with fitsio.FITS(PATH) as h:
                for x in PREDICT_HDUS:
                    h[x].verify_checksum()

        timed("fitsio verify_checksum (prediction HDUs)", fitsio_checksums, n)
    a = astropy_read(PREDICT_HDUS)
    s = read_spectra(PATH, resolution=False)
    same = all(np.array_equal(a[f"{b.upper()}_FLUX"], s.flux[b], equal_nan=True) for b in s.bands)
    print(f"surveynet == astropy on the flux: {same}")


if __name__ == "__main__":
    main()
