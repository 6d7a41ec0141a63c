"""The dose curve's B-spline basis, shared by the parametric and the data-driven (cck) dose
curves of continuous_did."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline


def dose_basis(
    x: np.ndarray, lo: float, hi: float, interior: np.ndarray, degree: int
) -> tuple[np.ndarray, np.ndarray]:
    """(1, B-spline basis without its first function) at x and its derivative: the B-spline
    space on [lo, hi] with the interior knots, extended beyond by its end polynomials."""
    t = np.concatenate([np.full(degree + 1, lo), interior, np.full(degree + 1, hi)])
    p = t.size - degree - 1
    value = np.ones((x.size, p))
    slope = np.zeros((x.size, p))
    for j in range(1, p):
        c = np.zeros(p)
        c[j] = 1.0
        spline = BSpline(t, c, degree, extrapolate=True)
        value[:, j] = spline(x)
        slope[:, j] = spline.derivative()(x)
    return value, slope
