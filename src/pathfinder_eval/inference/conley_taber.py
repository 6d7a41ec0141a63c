"""Conley–Taber inference for difference-in-differences with very few treated groups.

Conley & Taber (2011, Review of Economics and Statistics 93:113–125), Section 2 and
Proposition 2. In y_jt = α d_jt + θ_j + γ_t + η_jt with N1 treated groups fixed and N0 control
groups growing, the time effects are estimated consistently from the controls and the TWFE
estimate satisfies α̂ → α + W, W = Σ_{j≤N1} Σ_t w_jt η_jt / Σ_{j≤N1} Σ_t w_jt², with
w_jt = d_jt − d̄_j (treated group j's treatment path, demeaned over its periods). α̂ is therefore
not consistent, but the distribution of W can be estimated because the control groups' TWFE
residuals η̂_ℓt estimate draws of the same error process: Γ̂(a) is the share of tuples
(ℓ_1, …, ℓ_N1) of control groups (drawn with replacement) with Σ_j Σ_t w_jt η̂_{ℓ_j t} /
Σ_j Σ_t w_jt² ≤ a. All N0^N1 tuples are enumerated when that is at most `draws`, otherwise
`draws` tuples are sampled (seeded).

Test and interval: for H0: α = α0 the two-sided p-value is min(1, 2·min(Γ̂(α̂ − α0),
1 − Γ̂((α̂ − α0)⁻))), each tail share counting the estimate among the M draws ((count + 1)/
(M + 1), so never 0), and the interval {α0 : p(α0) > 1 − level} is [α̂ − w_(M−r+1), α̂ − w_(r)]
with w_(·) the sorted draws and r = ⌊(1 − level)·(M + 1)/2⌋ (equal-tailed test inversion; none
when r < 1: too few draws to reject at that level).

Validity (what the method assumes, and the report should say): many control groups (the
approximation is as N0 → ∞ with N1 fixed); the error process (η_j1, …, η_jT) is independent
across groups and identically distributed for treated and control groups, independent of
treatment timing (so the controls' residuals stand in for the treated groups' errors);
balanced panel. Unequal group sizes make the errors of aggregate (group-mean) outcomes
heteroskedastic, which breaks identical distribution: Ferman & Pinto (2019, Review of
Economics and Statistics 101:452–467) model var(Σ_t w_jt η_ℓt | M_ℓ) = A_j + B_j / M_ℓ for
group size M_ℓ, estimate A_j, B_j by least squares of the squared control contributions on
(1, 1/M_ℓ), and rescale each control contribution to the treated group's variance,
·√((Â_j + B̂_j/M_j) / (Â_j + B̂_j/M_ℓ)). Pass `sizes` to apply it. The variance function is
estimated from the controls, so the correction itself needs many of them: in the tests, a
small treated group among 200 groups is brought to nominal size, among 50 only part-way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.inference.cr2 import two_way_projection

# A fitted variance A + B/M at or below this share of the mean squared contribution is
# treated as this floor (least-squares noise can make it non-positive for extreme sizes).
VARIANCE_FLOOR = 1e-6


@dataclass(frozen=True)
class ConleyTaber:
    """estimate: TWFE α̂; null: (M,) draws of W from the control residuals (sorted);
    p_value: H0 α = 0, two-sided equal-tailed; ci_lower, ci_upper: inversion interval;
    enumerated: all N0^N1 tuples used; n_treated, n_controls: N1, N0; size_corrected: the
    Ferman–Pinto rescaling was applied."""

    estimate: float
    null: np.ndarray
    p_value: float
    ci_lower: float
    ci_upper: float
    draws: int
    enumerated: bool
    n_treated: int
    n_controls: int
    size_corrected: bool


def conley_taber(
    y: np.ndarray,
    d: np.ndarray,
    units: np.ndarray,
    periods: np.ndarray,
    sizes: np.ndarray | None = None,
    draws: int = 9999,
    level: float = 0.95,
    seed: int = 0,
) -> ConleyTaber:
    """Conley–Taber inference for the TWFE coefficient of `d` (module docstring).

    y, d: (n,) outcome and 0/1 treatment indicator; units, periods: (n,) integer codes from 0
    of a balanced panel (every unit once in every period); sizes: optional (U,) group sizes
    M_j (e.g. children per LA) for the Ferman–Pinto correction; draws: tuples sampled when
    N0^N1 exceeds it."""
    y = np.asarray(y, dtype=float)
    d = np.asarray(d, dtype=float)
    units = np.asarray(units, dtype=np.int64)
    periods = np.asarray(periods, dtype=np.int64)
    n_u, n_t = units.max() + 1, periods.max() + 1
    cell = np.full((n_u, n_t), -1)
    cell[units, periods] = np.arange(len(y))
    if len(y) != n_u * n_t or np.any(cell < 0):
        raise EstimationError(
            "Conley–Taber inference needs a balanced panel (every unit in every period)",
            where="inference.method",
            fix="drop units with missing periods or use the wild bootstrap",
        )
    proj = two_way_projection(units, periods)
    yt, dt = proj.residuals(np.column_stack([y, d])).T
    if dt @ dt <= 1e-12 * max(d @ d, 1e-300):
        raise EstimationError(
            "the treatment indicator is collinear with the unit and period effects",
            where="treatment timing",
            fix="the design needs comparison units that are never treated",
        )
    alpha_hat = float(dt @ yt / (dt @ dt))
    resid = (yt - alpha_hat * dt)[cell]  # (U, T) TWFE residuals
    dmat = d[cell]
    treated = np.flatnonzero(dmat.max(axis=1) > 0)
    controls = np.flatnonzero(dmat.max(axis=1) == 0)
    if len(controls) < 2:
        raise EstimationError(
            f"Conley–Taber inference needs many never-treated groups; found {len(controls)}",
            where="comparison",
            fix="use the wild bootstrap or randomisation inference",
        )
    w = dmat[treated] - dmat[treated].mean(axis=1, keepdims=True)  # (N1, T)
    contrib = w @ resid[controls].T  # (N1, N0): Σ_t w_jt η̂_ℓt
    corrected = sizes is not None
    if corrected:
        contrib = _ferman_pinto(contrib, np.asarray(sizes, dtype=float), treated, controls)
    denom = float(np.sum(w * w))
    n1, n0 = contrib.shape
    enumerated = n0**n1 <= draws
    if enumerated:
        picks = np.array(list(itertools.product(range(n0), repeat=n1)))
    else:
        picks = np.random.default_rng(seed).integers(n0, size=(draws, n1))
    null = np.sort(contrib[np.arange(n1)[None, :], picks].sum(axis=1) / denom)
    m = len(null)
    n_below = np.searchsorted(null, alpha_hat, side="right")  # m·Γ̂(α̂)
    n_above = m - np.searchsorted(null, alpha_hat, side="left")  # m·(1 − Γ̂(α̂⁻))
    # (count + 1)/(m + 1), the estimate counted among the draws it is compared with
    # (Davison & Hinkley 1997, §4.2): a p-value is never 0, even when every tuple is
    # enumerated (an estimate beyond all 149 controls' draws showed p = 0.000; found in
    # review), and with m draws it is at least 2/(m + 1)
    below = (n_below + 1) / (m + 1)
    above = (n_above + 1) / (m + 1)
    # the α0 whose p-value exceeds 1 − level: both tails' counts reach r = ⌊(1 − level)(M + 1)/2⌋
    # (it was ⌊(1 − level)M/2⌋ + 1, the inversion of count/M: with 19 controls a finite 95%
    # interval excluding 0 beside p = 0.10; found in review); r < 1: no draw count can reject,
    # so no bounded interval (NaN)
    r = int(np.floor((1.0 - level) * (m + 1) / 2.0 + 1e-9))  # 0.1 · 1000 / 2 is 49.999…
    if r < 1 or r > m - r + 1:
        lo, hi = float("nan"), float("nan")
    else:
        lo, hi = alpha_hat - null[m - r], alpha_hat - null[r - 1]
    return ConleyTaber(
        alpha_hat,
        null,
        float(min(1.0, 2.0 * min(below, above))),
        float(lo),
        float(hi),
        m,
        enumerated,
        n1,
        n0,
        corrected,
    )


def _ferman_pinto(
    contrib: np.ndarray, sizes: np.ndarray, treated: np.ndarray, controls: np.ndarray
) -> np.ndarray:
    """Rescale contributions (N1, N0) to each treated group's variance under
    var = A_j + B_j / M (Ferman & Pinto 2019), A_j, B_j by least squares over controls."""
    if np.any(~np.isfinite(sizes)) or np.any(sizes <= 0):
        raise EstimationError(
            "group sizes for the Ferman–Pinto correction must be positive",
            where="sizes",
            fix="give each unit's population (e.g. the outcome denominator)",
        )
    inv = 1.0 / sizes
    design = np.column_stack([np.ones(len(controls)), inv[controls]])
    coef = np.linalg.lstsq(design, (contrib**2).T, rcond=None)[0]  # (2, N1)
    floor = VARIANCE_FLOOR * np.mean(contrib**2, axis=1)
    var_c = np.maximum(coef[0][:, None] + coef[1][:, None] * inv[controls][None, :], floor[:, None])
    var_t = np.maximum(coef[0] + coef[1] * inv[treated], floor)
    return contrib * np.sqrt(var_t[:, None] / var_c)
