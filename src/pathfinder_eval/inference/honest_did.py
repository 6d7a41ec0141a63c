"""Sensitivity of event-study conclusions to violations of parallel trends.

Implements the robust confidence sets of Rambachan & Roth (2023), "A More Credible Approach to
Parallel Trends", Review of Economic Studies 90(5):2555-2591, for a scalar target
theta = l' tau_post built from event-study coefficients beta_hat = tau + delta (pre-period
coefficients first, then post-period ones, reference period omitted and normalised to zero):

- Smoothness, Delta^SD(M) = {delta : |(delta_{t+1} - delta_t) - (delta_t - delta_{t-1})| <= M},
  with the fixed-length confidence interval (FLCI) of Armstrong & Kolesar (2018, Econometrica
  86(2):655-683; 2020, Quantitative Economics 11(1):1-39): the affine estimator with the
  shortest worst-case-bias-adjusted interval (Rambachan & Roth 2023, section 4.1).
- Relative magnitudes, Delta^RM(Mbar) = {delta : |delta_{t+1} - delta_t| <= Mbar *
  max_{s<0} |delta_{s+1} - delta_s| for all t >= 0}, written as the union over which pre-period
  difference attains the maximum (and its sign) of polyhedra; for each polyhedron the
  conditional moment-inequality test of Andrews, Roth & Pakes (2023, "Inference for Linear
  Conditional Moment Inequalities", Review of Economic Studies 90(6):2763-2791) with the
  least-favourable hybrid (first-stage size kappa = alpha / 10), inverted over a grid of theta;
  the confidence set is the union (Rambachan & Roth 2023, sections 4.2 and 5.3).
- Breakdown values: the largest M (or Mbar) whose robust interval excludes zero.

Conventions (grid of 1000 theta values on +/- 20 standard errors of l' beta_post around zero,
1000 least-favourable simulation draws, moments restricted to rows that involve post-period
coefficients) follow the HonestDiD R package's defaults so results are comparable.

Use `sensitivity_from_event_study(estimates, ...)` with an `EventStudy` result, or the
array-level `sensitivity_sd` / `sensitivity_rm` / `breakdown_value` functions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import clarabel
import numpy as np
from scipy import linalg, optimize, sparse, special, stats

from pathfinder_eval.errors import EstimationError

WHERE = "honest_did"
_MAX_VERTEX_SUBSETS = 2_000_000


@dataclass(frozen=True)
class OriginalCI:
    """The conventional interval for theta = l' beta_post under exact parallel trends."""

    estimate: float
    std_error: float
    lower: float
    upper: float


@dataclass(frozen=True)
class SensitivityResult:
    """Robust confidence intervals for theta = l' tau_post over a grid of restriction sizes.

    Attributes:
        restriction: "SD" (smoothness, Delta^SD(M)) or "RM" (relative magnitudes,
            Delta^RM(Mbar)).
        method: "FLCI" (Armstrong-Kolesar fixed-length CI) or "C-LF" (Andrews-Roth-Pakes
            conditional test with least-favourable hybrid).
        m_values: shape (n_m,), the M (SD) or Mbar (RM) values, in the order given.
        lower, upper: shape (n_m,), the interval end points; for C-LF the smallest and largest
            accepted theta grid values (NaN if none accepted).
        l_vec: shape (n_post,), weights on the post-period coefficients.
        level: confidence level, 1 - alpha.
        original: the conventional interval l' beta_post +/- z * se.
        breakdown: largest value in `m_values` whose interval excludes zero, with every smaller
            value also excluding zero; None if the smallest does not.
        n_pre, n_post: numbers of pre- and post-period coefficients.
    """

    restriction: str
    method: str
    m_values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    l_vec: np.ndarray
    level: float
    original: OriginalCI
    breakdown: float | None
    n_pre: int
    n_post: int

    def rows(self) -> list[dict[str, float | str]]:
        """One dict per M: lb, ub, method, Delta, M (the HonestDiD table layout)."""
        name = "M" if self.restriction == "SD" else "Mbar"
        return [
            {
                "lb": float(lo),
                "ub": float(hi),
                "method": self.method,
                "Delta": f"Delta{self.restriction}",
                name: float(m),
            }
            for m, lo, hi in zip(self.m_values, self.lower, self.upper, strict=True)
        ]


@dataclass(frozen=True)
class FLCI:
    """One fixed-length CI under Delta^SD(M).

    Attributes:
        lower, upper: interval end points.
        estimate: the affine estimate v' beta_hat at the centre.
        half_length: chi * sd, chi the 1 - alpha quantile of |N(bias/sd, 1)|.
        weights: shape (n_pre + n_post,), v (pre-period entries then l_vec).
        max_bias: worst-case bias over Delta^SD(M).
        std_error: sqrt(v' Sigma v).
    """

    lower: float
    upper: float
    estimate: float
    half_length: float
    weights: np.ndarray
    max_bias: float
    std_error: float


# ---------------------------------------------------------------------------------------------
# Input checks


def _check_inputs(betahat, sigma, n_pre, n_post, l_vec, level):
    b = np.asarray(betahat, dtype=float).ravel()
    s = np.asarray(sigma, dtype=float)
    if n_pre < 1 or n_post < 1:
        raise EstimationError(
            f"needs at least one pre- and one post-period coefficient (got {n_pre}, {n_post})",
            where=WHERE,
            fix="estimate an event study with leads and lags around the reference period",
        )
    k = n_pre + n_post
    if b.size != k or s.shape != (k, k):
        raise EstimationError(
            f"betahat has {b.size} entries and sigma shape {s.shape}; expected {k} and ({k}, {k})",
            where=WHERE,
            fix="pass the event-study coefficients (pre then post) and their covariance only",
        )
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s))):
        raise EstimationError(
            "betahat or sigma has non-finite entries: an event-study coefficient without a "
            "variance (NaN: every cell it rests on is fitted exactly) cannot be bounded",
            where=WHERE,
            fix="use event times observed in more than one treated unit (min_lead, max_lag)",
        )
    if np.max(np.abs(s - s.T)) > 1e-8 * max(1.0, np.max(np.abs(s))):
        raise EstimationError("sigma is not symmetric", where=WHERE, fix="pass a covariance")
    s = (s + s.T) / 2
    if l_vec is None:
        lv = np.zeros(n_post)
        lv[0] = 1.0
    else:
        lv = np.asarray(l_vec, dtype=float).ravel()
        if lv.size != n_post or not np.any(lv != 0):
            raise EstimationError(
                f"l_vec needs {n_post} weights, not all zero",
                where=WHERE,
                fix="give one weight per post-period coefficient",
            )
    if not 0 < level < 1:
        raise EstimationError(f"level {level} is not in (0, 1)", where=WHERE)
    sd_theta = math.sqrt(max(float(lv @ s[n_pre:, n_pre:] @ lv), 0.0))
    if not sd_theta > 0:
        raise EstimationError("l' Sigma_post l is zero", where=WHERE, fix="check sigma")
    return b, s, lv, sd_theta


def original_ci(betahat, sigma, n_pre, n_post, l_vec=None, level=0.95) -> OriginalCI:
    """Conventional interval l' beta_post +/- z_{1-alpha/2} se (HonestDiD constructOriginalCS)."""
    b, _, lv, sd = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, level)
    est = float(lv @ b[n_pre:])
    z = stats.norm.ppf(1 - (1 - level) / 2)
    return OriginalCI(est, sd, est - z * sd, est + z * sd)


def _breakdown_on_grid(m_values, lower, upper) -> float | None:
    best = None
    for m, lo, hi in sorted(zip(m_values, lower, upper, strict=True)):
        if np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0):
            best = float(m)
        else:
            break
    return best


# ---------------------------------------------------------------------------------------------
# Smoothness: FLCI


def _sd_maps(n_pre: int, n_post: int):
    """delta (without delta_0) = D_slope * slope + D_eta @ eta, eta the second differences.

    Time runs -n_pre..n_post with delta_0 = 0; the slope is delta_0 - delta_{-1}; eta_t is the
    change in the first difference at t (t = -n_pre+2 .. n_post), bounded by M in absolute value.
    """
    times = np.arange(-n_pre, n_post + 1)
    n_eta = n_pre + n_post - 1
    # first differences d_t = delta_t - delta_{t-1}, t = -n_pre+1..n_post
    # d_t = slope + sum_{u=1..t} eta_u (t >= 1); d_t = slope - sum_{u=t+1..0} eta_u (t <= 0)
    eta_times = np.arange(-n_pre + 2, n_post + 1)

    def d_coef(t):
        c = np.zeros(n_eta)
        if t >= 1:
            c[(eta_times >= 1) & (eta_times <= t)] = 1.0
        else:
            c[(eta_times >= t + 1) & (eta_times <= 0)] = -1.0
        return c

    rows_slope, rows_eta = [], []
    for t in times:
        if t == 0:
            continue
        if t > 0:
            slope = float(t)
            eta = sum((d_coef(u) for u in range(1, t + 1)), np.zeros(n_eta))
        else:  # delta_t = -(d_{t+1} + ... + d_0)
            slope = float(t)
            eta = -sum((d_coef(u) for u in range(t + 1, 1)), np.zeros(n_eta))
        rows_slope.append(slope)
        rows_eta.append(eta)
    return np.array(rows_slope), np.array(rows_eta)


def _folded_normal_quantile(p: float, mu: float) -> float:
    """Quantile of |N(mu, 1)|: c with Phi(c - mu) - Phi(-c - mu) = p."""
    mu = abs(mu)
    if mu > 40:
        return mu + stats.norm.ppf(p)

    def f(c):
        return special.ndtr(c - mu) - special.ndtr(-c - mu) - p  # stats.norm.cdf, unwrapped

    hi = mu + 10.0
    return optimize.brentq(f, 0.0, hi, xtol=1e-14, rtol=1e-14)


def flci_sd(betahat, sigma, n_pre, n_post, m, l_vec=None, level=0.95, folded_quantile=None) -> FLCI:
    """Fixed-length CI for l' tau_post under Delta^SD(M) (Armstrong & Kolesar; Rambachan & Roth
    2023, section 4.1): minimise chi_{1-alpha}(bias/sd) * sd over affine estimators
    l' beta_post - w' beta_pre that are unbiased for linear trends.

    chi is the exact quantile of |N(mu, 1)| unless `folded_quantile(p, mu)` is given (HonestDiD
    simulates it from 10^6 draws). The worst-case bias for each sd bound h is a second-order cone
    program (Clarabel, made exact on the active set it finds; `_Flci.min_bias_given_h`); the
    optimal h is found on a 41-point grid refined by bounded Brent search.
    """
    return _Flci(betahat, sigma, n_pre, n_post, l_vec, level, folded_quantile).interval(m)


@dataclass(frozen=True)
class _ConeProgram:
    """One FLCI problem's cone program in Clarabel's terms (P, q, A, the fixed part of b, the
    cones, settings), with μ and r0 of var(w) = (w − μ)' S_pp (w − μ) + r0 and the components
    of G w + g0 that depend on w (`moving`)."""

    p: sparse.csc_matrix
    q: np.ndarray
    a: sparse.csc_matrix
    centre: np.ndarray
    cones: list
    settings: object
    mu: np.ndarray
    r0: float
    moving: np.ndarray


class _Flci:
    """One FLCI problem (estimates, covariance, target), solved for any number of M: the
    smallest worst-case bias for an sd bound h does not depend on M, so each h is solved once
    for all of them (the 41-point grid is shared by every M of a sensitivity table and every
    step of a breakdown search)."""

    def __init__(self, betahat, sigma, n_pre, n_post, l_vec, level, folded_quantile):
        self.cv = _folded_normal_quantile if folded_quantile is None else folded_quantile
        self.b, s, self.lv, self.sd_theta = _check_inputs(
            betahat, sigma, n_pre, n_post, l_vec, level
        )
        self.alpha = 1 - level
        self.n_pre = n_pre
        ss = s / self.sd_theta**2  # work in units of sd(l' beta_post)
        d_slope, d_eta = _sd_maps(n_pre, n_post)
        pre, post = slice(0, n_pre), slice(n_pre, None)
        # bias(eta) = l' delta_post - w' delta_pre = c(w)' eta, c(w) = G w + g0; trend: a'w = a0
        self.g_mat = -d_eta[pre].T
        self.g0 = d_eta[post].T @ self.lv
        self.a_vec, self.a0 = d_slope[pre], float(d_slope[post] @ self.lv)
        self.s_pp, self.s_pq = ss[pre, pre], ss[pre, post]
        self.s_qq = float(self.lv @ ss[post, post] @ self.lv)
        # minimum variance (M = 0 estimator): KKT for min var s.t. a'w = a0
        kkt = np.block(
            [[2 * self.s_pp, self.a_vec[:, None]], [self.a_vec[None, :], np.zeros((1, 1))]]
        )
        rhs = np.concatenate([2 * self.s_pq @ self.lv, [self.a0]])
        self.w_min = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:n_pre]
        self.h_min = math.sqrt(max(self.var(self.w_min), 0.0))
        # minimum-bias estimator: all weight on the last pre-period
        self.w_bias = np.zeros(n_pre)
        self.w_bias[-1] = self.a0 / self.a_vec[-1]
        self.h_max = math.sqrt(max(self.var(self.w_bias), 0.0))
        self._solved: dict[float, tuple[float, np.ndarray]] = {}

    def var(self, w):
        return float(w @ self.s_pp @ w - 2 * w @ self.s_pq @ self.lv + self.s_qq)

    def bias_l1(self, w):
        return float(np.abs(self.g_mat @ w + self.g0).sum())

    def min_bias_given_h(self, h):
        """min ||G w + g0||_1 s.t. var(w) <= h^2, a'w = a0: a second-order cone program, solved
        by Clarabel and made exact on the active set it finds, where the KKT conditions certify
        that point optimal; otherwise (a degenerate active set) by SLSQP from the
        minimum-variance weights, the slower route that needs no certificate."""
        if h in self._solved:
            return self._solved[h]
        if h <= self.h_min:  # the minimum-variance weights are the only feasible point
            w = self.w_min
        else:
            w = self._certified(h)
            if w is None:
                w = self._slsqp(h)
        self._solved[h] = (self.bias_l1(w), w)
        return self._solved[h]

    @cached_property
    def _cone(self) -> _ConeProgram:
        """The program in Clarabel's form (x = [w, t]; min 1't): a'w = a0, t >= ±(G w + g0),
        and ||R'(w − μ)|| <= sqrt(h² − r0) with var(w) = ||R'(w − μ)||² + r0 (R R' = S_pp);
        only the cone's radius depends on h."""
        n, k = self.n_pre, self.g0.size
        root = np.linalg.cholesky(self.s_pp)
        mu = np.linalg.solve(self.s_pp, self.s_pq @ self.lv)
        a = np.vstack(
            [
                np.concatenate([self.a_vec, np.zeros(k)]),
                np.hstack([self.g_mat, -np.eye(k)]),
                np.hstack([-self.g_mat, -np.eye(k)]),
                np.zeros(n + k),
                np.hstack([-root.T, np.zeros((n, k))]),
            ]
        )
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        return _ConeProgram(
            sparse.csc_matrix((n + k, n + k)),
            np.concatenate([np.zeros(n), np.ones(k)]),
            sparse.csc_matrix(a),
            -root.T @ mu,
            [
                clarabel.ZeroConeT(1),
                clarabel.NonnegativeConeT(2 * k),
                clarabel.SecondOrderConeT(n + 1),
            ],
            settings,
            mu,
            self.var(mu),
            np.abs(self.g_mat).sum(axis=1) > 0,
        )

    def _certified(self, h):
        """The optimal weights for sd bound h to rounding error, or None: Clarabel's interior
        point names the components of G w + g0 that are zero; on that active set the optimum
        is a linear objective over an ellipsoid within an affine set (closed form), kept only
        if its signs agree and its Lagrange multipliers satisfy the KKT conditions."""
        cone = self._cone
        radius2 = h * h - cone.r0
        if radius2 <= 0:
            return None
        b = np.concatenate([[self.a0], -self.g0, self.g0, [math.sqrt(radius2)], cone.centre])
        solver = clarabel.DefaultSolver(cone.p, cone.q, cone.a, b, cone.cones, cone.settings)
        w = np.asarray(solver.solve().x[: self.n_pre])
        if not np.isfinite(w).all():
            return None
        gap = self.g_mat @ w + self.g0
        scale = float(
            np.abs(self.g_mat).sum(axis=1).max() * np.abs(w).max() + np.abs(self.g0).max()
        )
        for tol in (1e-9, 1e-7, 1e-5):
            zero = cone.moving & (np.abs(gap) <= tol * scale)
            best = self._on_active_set(zero, cone.moving & ~zero, np.sign(gap), radius2, scale)
            if best is not None:
                return best
        return None

    def _on_active_set(self, zero, rest, sign, radius2, scale):
        """min Σ_{j∈rest} s_j (G w + g0)_j s.t. (G w + g0)_Z = 0, a'w = a0, var(w) = h²; the
        point if it keeps the signs s and the KKT conditions hold (multipliers of the zero
        components within [−1, 1], of the variance bound non-negative)."""
        g_zero, g_rest, mu = self.g_mat[zero], self.g_mat[rest], self._cone.mu
        lhs = np.vstack([self.a_vec[None, :], g_zero])
        rhs = np.concatenate([[self.a0], -self.g0[zero]])
        free = linalg.null_space(lhs)
        if free.shape[1] == 0:
            return None
        base = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        cost = g_rest.T @ sign[rest]
        # on w = base + F y: var = (y − y0)' Q (y − y0) + const; minimise (F'cost)'y on it
        q_mat = free.T @ self.s_pp @ free
        lin = free.T @ self.s_pp @ (base - mu)
        y0 = -np.linalg.solve(q_mat, lin)
        left = radius2 - (base - mu) @ self.s_pp @ (base - mu) - lin @ y0
        direction = np.linalg.solve(q_mat, free.T @ cost)
        norm2 = float(free.T @ cost @ direction)
        if left <= 0 or norm2 <= 0:
            return None
        w = base + free @ (y0 - math.sqrt(left / norm2) * direction)
        gap = self.g_mat @ w + self.g0
        if np.any(sign[rest] * gap[rest] <= 0) or np.any(np.abs(gap[zero]) > 1e-12 * scale):
            return None
        # stationarity: cost + G_Z'u + α a + λ 2 S (w − μ) = 0
        normals = np.column_stack([g_zero.T, self.a_vec, 2 * self.s_pp @ (w - mu)])
        mult, *_ = np.linalg.lstsq(normals, -cost, rcond=None)
        residual = np.abs(normals @ mult + cost).max()
        size = 1.0 + np.abs(cost).max()
        u, lam = mult[: g_zero.shape[0]], mult[-1]
        if residual > 1e-8 * size or np.any(np.abs(u) > 1 + 1e-8) or lam < -1e-10:
            return None
        return w

    def _slsqp(self, h):
        """The same program by SLSQP with slacks, from the minimum-variance weights."""
        n_pre, g_mat, g0, a_vec, a0 = self.n_pre, self.g_mat, self.g0, self.a_vec, self.a0
        s_pp, s_pq, lv = self.s_pp, self.s_pq, self.lv
        n_eta = g0.size
        x0 = np.concatenate([self.w_min, np.abs(g_mat @ self.w_min + g0) + 1e-9])

        def obj(x):
            return x[n_pre:].sum()

        def jac(x):
            return np.concatenate([np.zeros(n_pre), np.ones(n_eta)])

        eye = np.eye(n_eta)

        def inequalities(x):  # slacks above ±(G w + g0), then the variance bound
            gap = g_mat @ x[:n_pre] + g0
            return np.concatenate([x[n_pre:] - gap, x[n_pre:] + gap, [h**2 - self.var(x[:n_pre])]])

        def inequalities_jac(x):
            bound = np.concatenate([-(2 * s_pp @ x[:n_pre] - 2 * s_pq @ lv), np.zeros(n_eta)])
            return np.vstack([np.hstack([-g_mat, eye]), np.hstack([g_mat, eye]), bound])

        cons = [
            {
                "type": "eq",
                "fun": lambda x: a_vec @ x[:n_pre] - a0,
                "jac": lambda x: np.concatenate([a_vec, np.zeros(n_eta)]),
            },
            {"type": "ineq", "fun": inequalities, "jac": inequalities_jac},
        ]
        res = optimize.minimize(
            obj,
            x0,
            jac=jac,
            constraints=cons,
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        w = res.x[:n_pre]
        # project onto the trend constraint exactly
        return w + a_vec * (a0 - a_vec @ w) / (a_vec @ a_vec)

    def half_length(self, h, mm):
        bias, w = self.min_bias_given_h(h)
        sd = math.sqrt(max(self.var(w), 1e-300))
        return self.cv(1 - self.alpha, mm * bias / sd) * sd, w, bias, sd

    def interval(self, m) -> FLCI:
        if not (np.isfinite(m) and m >= 0):
            raise EstimationError(
                f"M = {m} must be finite and >= 0",
                where=WHERE,
                fix="give M values of 0 or more (the largest change in the trend's slope)",
            )
        mm = m / self.sd_theta
        h_min, h_max = self.h_min, self.h_max
        if mm == 0 or h_max - h_min < 1e-12 * max(h_min, 1.0):
            w = self.w_min if mm == 0 else self.w_bias
            sd = math.sqrt(self.var(w))
            bias = self.bias_l1(w)
            hl = self.cv(1 - self.alpha, mm * bias / sd) * sd
        else:
            grid = np.linspace(h_min, h_max, 41)
            vals = [self.half_length(h, mm)[0] for h in grid]
            j = int(np.argmin(vals))
            lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
            res = optimize.minimize_scalar(
                lambda h: self.half_length(h, mm)[0],
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-10 * h_max},
            )
            hstar = res.x if res.fun <= vals[j] else grid[j]
            hl, w, bias, sd = self.half_length(hstar, mm)
        v = np.concatenate([-w, self.lv])
        est = float(v @ self.b)
        hl_raw = hl * self.sd_theta
        return FLCI(
            est - hl_raw,
            est + hl_raw,
            est,
            hl_raw,
            v,
            mm * bias * self.sd_theta,
            sd * self.sd_theta,
        )


def sensitivity_sd(
    betahat, sigma, n_pre, n_post, m_values, l_vec=None, level=0.95, folded_quantile=None
):
    """FLCIs under Delta^SD(M) for each M in `m_values` (HonestDiD createSensitivityResults,
    method "FLCI"). `folded_quantile` as in `flci_sd`. Returns a SensitivityResult ("SD")."""
    b, s, lv, _ = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, level)
    ms = np.asarray(m_values, dtype=float).ravel()
    problem = _Flci(b, s, n_pre, n_post, lv, level, folded_quantile)
    cis = [problem.interval(m) for m in ms]
    lower = np.array([c.lower for c in cis])
    upper = np.array([c.upper for c in cis])
    return SensitivityResult(
        "SD",
        "FLCI",
        ms,
        lower,
        upper,
        lv,
        level,
        original_ci(b, s, n_pre, n_post, lv, level),
        _breakdown_on_grid(ms, lower, upper),
        n_pre,
        n_post,
    )


# ---------------------------------------------------------------------------------------------
# Relative magnitudes: ARP conditional test with least-favourable hybrid


def _rm_constraints(
    n_pre: int, n_post: int, mbar: float, j: int, positive: bool, post_rows_only: bool = True
):
    """A with A delta <= 0 for the piece where pre-period difference j (between positions j
    and j+1 of (delta_{-n_pre}, ..., delta_0, ..., delta_{n_post})) is the largest and has the
    given sign; delta_0's column dropped; only rows involving post-period coefficients kept.
    """
    n = n_pre + n_post
    diffs = np.zeros((n, n + 1))
    for r in range(n):
        diffs[r, r], diffs[r, r + 1] = -1.0, 1.0
    vmax = np.zeros(n + 1)
    vmax[j], vmax[j + 1] = -1.0, 1.0
    if not positive:
        vmax = -vmax
    bound = np.vstack([np.tile(vmax, (n_pre, 1)), np.tile(mbar * vmax, (n_post, 1))])
    a = np.vstack([diffs - bound, -diffs - bound])
    a = a[(a * a).sum(axis=1) > 1e-10]
    a = np.delete(a, n_pre, axis=1)
    return a[np.any(a[:, n_pre:] != 0, axis=1)] if post_rows_only else a


def _complement_basis(lv: np.ndarray):
    """g1 with l'g1 = 1 and columns spanning {v : l'v = 0}."""
    g1 = lv / (lv @ lv)
    _, _, vt = np.linalg.svd(lv[None, :])
    return g1, vt[1:].T


def _dual_vertices(sd: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Vertices of {lam >= 0 : sd' lam = 1, X' lam = 0}; rows of the returned array.

    eta(y) = min_{eta, d} eta s.t. y - X d <= sd * eta equals max over these vertices of lam'y.
    """
    m, k = x.shape
    w = np.column_stack([sd, x])  # m x (k+1)
    e1 = np.zeros(k + 1)
    e1[0] = 1.0
    n_subsets = sum(math.comb(m, r) for r in range(1, k + 2))
    if n_subsets > _MAX_VERTEX_SUBSETS:
        raise EstimationError(
            f"relative-magnitudes test with {k + 1} post periods has too many moment vertices",
            where=WHERE,
            fix="use fewer post periods or a scalar target over fewer periods",
        )
    out = []
    for r in range(1, k + 2):
        for sub in itertools.combinations(range(m), r):
            ws = w[list(sub)].T  # (k+1) x r
            lam_s, *_ = np.linalg.lstsq(ws, e1, rcond=None)
            if np.linalg.norm(ws @ lam_s - e1) > 1e-9 or np.any(lam_s < -1e-12):
                continue
            if np.linalg.matrix_rank(ws) < r:
                continue
            lam = np.zeros(m)
            lam[list(sub)] = np.clip(lam_s, 0.0, None)
            out.append(lam)
    if not out:
        return np.zeros((0, m))
    verts = np.unique(np.round(np.array(out), 12), axis=0)
    return verts


class _ARPPiece:
    """ARP conditional / LF-hybrid test of H0: theta = t for one polyhedron A delta <= 0."""

    def __init__(self, a, b, s, n_pre, lv, alpha, kappa, z):
        a_post = a[:, n_pre:]
        g1, gperp = _complement_basis(lv)
        self.a1 = a_post @ g1
        x = a_post @ gperp
        self.y0 = a @ b
        self.sig = a @ s @ a.T
        self.sd = np.sqrt(np.diag(self.sig))
        self.verts = _dual_vertices(self.sd, x)
        self.alpha, self.kappa = alpha, kappa
        self.mod_size = (alpha - kappa) / (1 - kappa)
        if self.verts.shape[0] == 0:
            self.lf_cv = -np.inf
        else:
            # xi = z Sigma^{1/2} (symmetric root, as mvtnorm's "eigen" method)
            ev, evec = np.linalg.eigh(self.sig)
            root = (evec * np.sqrt(np.clip(ev, 0.0, None))) @ evec.T
            draws = z @ root
            etas = (draws @ self.verts.T).max(axis=1)
            self.lf_cv = float(np.quantile(etas, 1 - kappa))
        self._vs = self.verts @ self.sig  # (n_v, m)

    def eta(self, thetas: np.ndarray) -> np.ndarray:
        if self.verts.shape[0] == 0:
            return np.full(thetas.shape, -np.inf)
        y = self.y0[None, :] - thetas[:, None] * self.a1[None, :]
        return (y @ self.verts.T).max(axis=1)

    def accept(self, thetas: np.ndarray) -> np.ndarray:
        """Whether the test accepts H0: theta = t, for each t of `thetas` (one pass over all of
        them, so the truncated-normal critical values are one vectorised call)."""
        thetas = np.asarray(thetas, dtype=float)
        if self.verts.shape[0] == 0:
            return np.ones(thetas.shape, dtype=bool)
        y = self.y0[None, :] - thetas[:, None] * self.a1[None, :]
        vals = y @ self.verts.T
        best = np.argmax(vals, axis=1)
        eta = vals[np.arange(thetas.size), best]
        gam = self.verts[best]
        sig_gam = gam @ self.sig
        var_b = np.einsum("ij,ij->i", sig_gam, gam)
        flat = var_b < np.finfo(float).eps
        safe_var = np.where(flat, 1.0, var_b)
        bvec = sig_gam / safe_var[:, None]
        svec = y - bvec * eta[:, None]
        ls = svec @ self.verts.T
        lb = bvec @ self.verts.T
        tol = 1e-10
        lo_mask, up_mask = lb < 1 - tol, lb > 1 + tol
        bound = np.where(lo_mask | up_mask, ls / np.where(lo_mask | up_mask, 1 - lb, 1.0), 0.0)
        vlo = np.where(lo_mask, bound, -np.inf).max(axis=1)
        vup = np.where(up_mask, bound, np.inf).min(axis=1)
        sd_b = np.sqrt(safe_var)
        zlo, zup = vlo / sd_b, np.minimum(vup, self.lf_cv) / sd_b
        stat = eta / sd_b
        inside = (zlo <= stat) & (stat <= zup) & ~flat
        cval = np.zeros(thetas.shape)
        if inside.any():
            cval[inside] = np.maximum(
                0.0, _truncnorm_quantile(1 - self.mod_size, zlo[inside], zup[inside])
            )
        accepted = np.where(inside, ~(stat > cval), True)
        accepted = np.where(flat, ~(eta > 0), accepted)
        return np.where(eta > self.lf_cv, False, accepted)


def _truncnorm_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    out = np.array(lo, dtype=float)
    ok = hi > lo
    if ok.any():
        out[ok] = stats.truncnorm.ppf(p, lo[ok], hi[ok])
    return out


def _rm_identified_set(b, n_pre, n_post, mbar, lv):
    """Identified set of l' tau_post under Delta^RM(Mbar) at beta = b (union over pieces)."""
    n = n_pre + n_post
    lo, hi = np.inf, -np.inf
    c = np.concatenate([np.zeros(n_pre), lv])
    a_eq = np.hstack([np.eye(n_pre), np.zeros((n_pre, n_post))])
    for j in range(n_pre):
        for positive in (True, False):
            a = _rm_constraints(n_pre, n_post, mbar, j, positive, post_rows_only=False)
            for sign in (1.0, -1.0):
                res = optimize.linprog(
                    sign * c,
                    A_ub=a,
                    b_ub=np.zeros(len(a)),
                    A_eq=a_eq,
                    b_eq=b[:n_pre],
                    bounds=[(None, None)] * n,
                    method="highs",
                )
                if res.status == 0:
                    val = float(lv @ b[n_pre:] - c @ res.x)
                    lo, hi = min(lo, val), max(hi, val)
    return lo, hi


def _rm_interval(
    b,
    s,
    n_pre,
    n_post,
    mbar,
    lv,
    sd_theta,
    alpha,
    kappa,
    grid_points,
    n_sims,
    seed,
    grid,
    normal_draws,
):
    if grid == "zero":
        g_lo, g_hi = -20.0, 20.0
    elif grid == "identified_set":
        id_lo, id_hi = _rm_identified_set(b, n_pre, n_post, mbar, lv)
        g_lo, g_hi = id_lo / sd_theta - 20.0, id_hi / sd_theta + 20.0
    else:
        g_lo, g_hi = grid[0] / sd_theta, grid[1] / sd_theta
    grid = np.linspace(g_lo, g_hi, grid_points)  # units of sd_theta
    bs, ss = b / sd_theta, s / sd_theta**2
    lb_idx, ub_idx = grid_points, -1
    for j in range(n_pre):
        for positive in (True, False):
            a = _rm_constraints(n_pre, n_post, mbar, j, positive)
            if normal_draws is None:
                z = np.random.default_rng(seed).standard_normal((n_sims, a.shape[0]))
            else:
                z = np.asarray(normal_draws(n_sims, a.shape[0]), dtype=float)
            piece = _ARPPiece(a, bs, ss, n_pre, lv, alpha, kappa, z)
            cand = np.flatnonzero(piece.eta(grid) <= piece.lf_cv)
            cand = cand[(cand < lb_idx) | (cand > ub_idx)]
            if cand.size == 0:
                continue
            accepted = cand[piece.accept(grid[cand])]
            if accepted.size:
                lb_idx = min(lb_idx, int(accepted[0]))  # lowest accepted grid point
                ub_idx = max(ub_idx, int(accepted[-1]))  # highest accepted grid point
    if ub_idx < 0:
        return math.nan, math.nan
    return float(grid[lb_idx] * sd_theta), float(grid[ub_idx] * sd_theta)


def sensitivity_rm(
    betahat,
    sigma,
    n_pre,
    n_post,
    mbar_values,
    l_vec=None,
    level=0.95,
    grid_points=1000,
    n_sims=1000,
    seed=0,
    grid="zero",
    normal_draws=None,
):
    """C-LF confidence sets under Delta^RM(Mbar) for each Mbar (HonestDiD
    createSensitivityResults_relativeMagnitudes, method "C-LF"): union over the pre-period
    difference attaining the maximum and its sign; kappa = alpha / 10.

    Theta grid: `grid_points` values on [-20, 20] * sd(l' beta_post) (grid="zero", HonestDiD's
    default since 2021), on [id_lb - 20 sd, id_ub + 20 sd] around the identified set at
    beta_hat (grid="identified_set", an earlier default, which produced the README table), or
    on an explicit (lower, upper) pair. `n_sims` least-favourable draws xi = z Sigma_Y^{1/2},
    z standard normal of shape (n_sims, n_moments) from numpy seeded with `seed`, or from
    `normal_draws(n, k)` if given (e.g. an emulation of R's generator); critical values
    otherwise differ from R's by Monte Carlo error. Returns a SensitivityResult ("RM").
    """
    b, s, lv, sd_theta = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, level)
    ms = np.asarray(mbar_values, dtype=float).ravel()
    if np.any(~np.isfinite(ms)) or np.any(ms < 0):
        raise EstimationError(
            "Mbar values must be finite and >= 0",
            where=WHERE,
            fix="give M̄ values of 0 or more (post-period violations as multiples of the largest "
            "pre-period one)",
        )
    alpha = 1 - level
    bounds = [
        _rm_interval(
            b,
            s,
            n_pre,
            n_post,
            mb,
            lv,
            sd_theta,
            alpha,
            alpha / 10,
            grid_points,
            n_sims,
            seed,
            grid,
            normal_draws,
        )
        for mb in ms
    ]
    lower = np.array([x[0] for x in bounds])
    upper = np.array([x[1] for x in bounds])
    return SensitivityResult(
        "RM",
        "C-LF",
        ms,
        lower,
        upper,
        lv,
        level,
        original_ci(b, s, n_pre, n_post, lv, level),
        _breakdown_on_grid(ms, lower, upper),
        n_pre,
        n_post,
    )


# ---------------------------------------------------------------------------------------------
# Breakdown values and event-study wiring


def breakdown_value(
    betahat,
    sigma,
    n_pre,
    n_post,
    restriction="SD",
    l_vec=None,
    level=0.95,
    m_max=None,
    tol=None,
    **kwargs,
) -> float | None:
    """Largest M (SD) or Mbar (RM) whose robust interval excludes zero, by bisection.

    Returns None if the interval at M = 0 already covers zero, and `m_max` if the interval
    still excludes zero there (default m_max: 20 * sd(l' beta_post) for SD, 20 for RM).
    Precision `tol` defaults to 1e-4 * sd(l' beta_post) (SD) or 1e-3 (RM); for RM the answer
    is subject to the theta grid of `sensitivity_rm`.
    """
    b, s, lv, sd_theta = _check_inputs(betahat, sigma, n_pre, n_post, l_vec, level)
    if restriction not in ("SD", "RM"):
        raise EstimationError(f"restriction {restriction!r} is not 'SD' or 'RM'", where=WHERE)

    flci = _Flci(b, s, n_pre, n_post, lv, level, None) if restriction == "SD" else None

    def excludes(m):
        if flci is not None:
            ci = flci.interval(m)
            lo, hi = ci.lower, ci.upper
        else:
            r = sensitivity_rm(b, s, n_pre, n_post, [m], lv, level, **kwargs)
            lo, hi = r.lower[0], r.upper[0]
        return bool(np.isfinite(lo) and (lo > 0 or hi < 0))

    if m_max is None:
        m_max = 20 * sd_theta if restriction == "SD" else 20.0
    if tol is None:
        tol = 1e-4 * sd_theta if restriction == "SD" else 1e-3
    if not excludes(0.0):
        return None
    if excludes(m_max):
        return float(m_max)
    lo, hi = 0.0, float(m_max)
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if excludes(mid):
            lo = mid
        else:
            hi = mid
    return lo


def event_study_inputs(estimates, reference: int = -1):
    """(betahat, sigma, n_pre, n_post) from an EventStudy EffectEstimates.

    Uses the table's `event_time` column and `vcov` (same order as the table rows); leads are
    event times below `reference`, lags those above it. Raises EstimationError if the
    estimates lack event times or a covariance, or if times are not pre then post.
    """
    table = estimates.table
    if "event_time" not in table.columns or estimates.vcov is None:
        raise EstimationError(
            "the estimates have no event times or no covariance",
            where=f"{WHERE}: {getattr(estimates, 'estimator', '?')}",
            fix="run the sensitivity analysis on an event-study result",
        )
    et = table["event_time"].to_numpy(dtype=float)
    vcov = np.asarray(estimates.vcov, dtype=float)
    if vcov.shape != (et.size, et.size):
        raise EstimationError(
            f"covariance shape {vcov.shape} does not match {et.size} event-study terms",
            where=WHERE,
        )
    order = np.argsort(et, kind="stable")
    et, vcov = et[order], vcov[np.ix_(order, order)]
    beta = table["estimate"].to_numpy(dtype=float)[order]
    n_pre, n_post = int(np.sum(et < reference)), int(np.sum(et > reference))
    if n_pre + n_post != et.size:
        raise EstimationError("event times include the reference period", where=WHERE)
    return beta, vcov, n_pre, n_post


def sensitivity_from_event_study(
    estimates, restriction="SD", m_values=None, l_vec=None, reference=-1, **kwargs
) -> SensitivityResult:
    """Sensitivity analysis for an EventStudy result (EffectEstimates with event_time, vcov).

    restriction "SD": FLCI over `m_values` (default 11 values from 0 to 0.5 * se(theta));
    restriction "RM": C-LF over `m_values` as Mbar (default 0, 0.5, ..., 2).
    """
    beta, vcov, n_pre, n_post = event_study_inputs(estimates, reference)
    level = kwargs.pop("level", estimates.level)
    if restriction == "SD":
        if m_values is None:
            sd = _check_inputs(beta, vcov, n_pre, n_post, l_vec, level)[3]
            m_values = np.linspace(0, 0.5 * sd, 11)
        return sensitivity_sd(beta, vcov, n_pre, n_post, m_values, l_vec, level)
    if restriction == "RM":
        if m_values is None:
            m_values = np.arange(0, 2.01, 0.5)
        return sensitivity_rm(beta, vcov, n_pre, n_post, m_values, l_vec, level, **kwargs)
    raise EstimationError(f"restriction {restriction!r} is not 'SD' or 'RM'", where=WHERE)
