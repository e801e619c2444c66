"""The numpy median filter of the spectral pipelines (replaces scipy.signal.medfilt)."""

import warnings

import numpy as np
import pytest


@pytest.mark.parametrize("k", [1, 3, 7, 15, 31])
@pytest.mark.parametrize("n", [1, 5, 40, 1001])
def test_medfilt_equals_scipy(k: int, n: int) -> None:
    """The numpy median filter equals scipy.signal.medfilt exactly (zero-padded ends)."""
    from scipy.signal import medfilt as scipy_medfilt

    from surveynet.nn.numpy_ops import medfilt

    x = np.random.default_rng(n * 100 + k).normal(size=n)
    x[::7] = 0.0  # ties
    with warnings.catch_warnings():  # scipy warns when the kernel is longer than the input
        warnings.simplefilter("ignore", UserWarning)
        expected = scipy_medfilt(x, k)
    np.testing.assert_array_equal(medfilt(x, k), expected)


def test_medfilt_bad_kernel() -> None:
    """Even kernels and 2-D input are refused."""
    from surveynet.nn.numpy_ops import medfilt

    with pytest.raises(ValueError, match="odd"):
        medfilt(np.ones(5), 4)
    with pytest.raises(ValueError, match="1-D"):
        medfilt(np.ones((2, 5)), 3)
