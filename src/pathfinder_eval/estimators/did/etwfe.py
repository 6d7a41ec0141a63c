"""Extended two-way fixed effects (Wooldridge 2021, 2023): one regression saturated in cohort ×
period treatment cells, linear or Poisson, aggregated like R's `etwfe::emfx`.

The model, as R's etwfe 0.6 fits it: cohort and period fixed effects; covariates X, their
interactions with cohort and with period; and for every treated cohort g and period t in the
treatment window an indicator D_gt with its interaction D_gt · (X − X̄_g), X̄_g the mean of X
over cohort g's rows. With not-yet-treated controls ("notyet") the window is t ≥ g, so every
not-yet-treated cell is a comparison; with never-treated controls ("never") it is every t
except g − 1, so the never-treated cohort alone identifies the period effects and the cells
before treatment give placebo effects. Without covariates the linear, not-yet-treated fit is
the imputation estimator (Borusyak, Jaravel & Spiess 2024); the Poisson fit (log link, offset
log population for rates) keeps the parallel-trends assumption on the ratio scale (Wooldridge
2023, Econometrics Journal 26:C31–C66), which counts per 10,000 children need.

An aggregated effect averages, over the treated rows of a group (all post-treatment rows,
a cohort, a period, or an event time t − g), the change in the prediction when the row's
treatment terms are switched off: for the linear model and the Poisson link scale that is
β_gt + γ_gt·(x − X̄_g); on the Poisson response scale exp(η₁) − exp(η₀). Standard errors are
the delta method with the fixed effects held fixed and the cluster-robust covariance of
fixest (CR1, G/(G−1) · (n−1)/(n−K), K counting the fixed effects: cohort effects are not
nested in unit clusters), with a normal reference, as `emfx` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from statsmodels.genmod.families import Poisson
from statsmodels.genmod.generalized_linear_model import GLM

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.two_way import absorb_two_way

Control = Literal["notyet", "never"]
Family = Literal["linear", "poisson"]
Aggregation = Literal["simple", "group", "calendar", "event"]


@dataclass(frozen=True)
class EtwfeFit:
    """coef, vcov: the treatment and covariate coefficients (Poisson: then the intercept,
    period and unit or cohort effects, which its response scale needs) and their CR1
    covariance; names: their labels; rows: the treated rows (indices into the data), their
    cohort and period; `treated_design` and `control_design`: each treated row's treatment
    terms and its other terms (rows × coefficients, the other part zero); `eta1`: its linear
    predictor (linear fits: without the fixed effects, which cancel); `absorbed`: a linear
    fit's slopes with the fixed effects projected out (Poisson: the whole design), from which
    `outcome_weights` gives each coefficient as weights on the outcomes;
    `slopes`: the treatment and covariate columns (n × their count); n_params: the K of
    CR1's small-sample factor; noise: the mean squared residual (Poisson: of the counts)."""

    family: Family
    control: Control
    coef: np.ndarray
    vcov: np.ndarray
    names: tuple[str, ...]
    rows: np.ndarray
    cohort: np.ndarray
    period: np.ndarray
    treated_design: np.ndarray
    control_design: np.ndarray
    eta1: np.ndarray
    absorbed: np.ndarray
    bread: np.ndarray
    slopes: np.ndarray
    n_obs: int
    n_clusters: int
    n_params: int
    noise: float


def outcome_weights(fit: EtwfeFit, gradient: np.ndarray) -> np.ndarray:
    """(m, n): estimates with `gradient` (m, coefficients) as weights on the outcomes (what the
    comparison-pooled variance reads): exact for a linear fit, gradient · (X̃ᵀX̃)⁻¹X̃ᵀ; for
    Poisson the first-order weights on the counts at the fitted means, gradient ·
    (XᵀWX)⁻¹Xᵀ, W = diag(μ̂), whose residual sums are the CR1 sandwich's scores."""
    return (gradient @ fit.bread) @ fit.absorbed.T


@dataclass(frozen=True)
class EtwfeEffects:
    """Aggregated effects: labels (m,), estimate (m,), vcov (m, m), n_rows (m,) the treated
    rows averaged, and `gradient` (m, coefficients) of each estimate in the coefficients."""

    labels: tuple[str, ...]
    estimate: np.ndarray
    vcov: np.ndarray
    n_rows: np.ndarray
    gradient: np.ndarray


def etwfe(
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    cohort: np.ndarray,
    covariates: np.ndarray | None = None,
    control: Control = "notyet",
    family: Family = "linear",
    offset: np.ndarray | None = None,
    unit_effects: bool = False,
) -> EtwfeFit:
    """Fit the saturated regression.

    y, unit, period (numeric), cohort (n,): cohort is the first treated period, NaN or inf for
    never treated; covariates (n, p) or None; offset (n,) added to the Poisson linear
    predictor (log population for rates). `unit_effects`: unit instead of cohort fixed effects
    (etwfe's `ivar`), which absorb the covariates' main and cohort terms when they are
    constant within units; the unit effects, nested in the clusters, are then not counted in
    CR1's K (fixest's `fixef.K = "nested"`). Standard errors cluster by unit."""
    y = np.asarray(y, float)
    period = np.asarray(period, float)
    cohort = np.where(np.isfinite(np.asarray(cohort, float)), cohort, np.inf)
    n = len(y)
    x = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, float).reshape(n, -1)
    groups = np.unique(np.asarray(unit), return_inverse=True)[1]
    terms = _terms(cohort, period, x, control, absorbed=unit_effects and _constant(x, groups))
    periods = np.unique(period)
    n_slopes = terms.slopes.shape[1]
    counted = n_slopes + len(periods) + (0 if unit_effects else len(terms.cohorts) - 1)
    G = int(groups.max()) + 1
    if n <= counted or G < 2:
        raise EstimationError(
            f"{n} cells from {G} unit(s) for {counted} coefficients: no residual variation to "
            "estimate a variance from",
            where="rollout",
            fix="supply more comparison units or periods",
        )
    scale = G / (G - 1) * (n - 1) / (n - counted)
    if family == "linear":
        fit = _linear(y, terms, groups if unit_effects else _codes(cohort), _codes(period))
        names, design = terms.names, terms.slopes
    else:
        design, fixed_names = _dummies(terms, groups, cohort, period, unit_effects)
        names = (*terms.names, *fixed_names)
        fit = _poisson(y, design, offset)
    scores = np.zeros((G, len(fit.coef)))
    np.add.at(scores, groups, fit.score)
    k, rows, width = terms.n_treatment, terms.rows, len(fit.coef)
    return EtwfeFit(
        family=family,
        control=control,
        coef=fit.coef,
        vcov=scale * fit.bread @ scores.T @ scores @ fit.bread,
        names=tuple(names),
        rows=rows,
        cohort=cohort[rows],
        period=period[rows],
        treated_design=np.hstack([design[rows, :k], np.zeros((len(rows), width - k))]),
        control_design=np.hstack([np.zeros((len(rows), k)), design[rows, k:width]]),
        eta1=fit.eta[rows],
        absorbed=fit.absorbed,
        bread=fit.bread,
        slopes=terms.slopes,
        n_obs=n,
        n_clusters=G,
        n_params=counted,
        noise=fit.noise,
    )


@dataclass(frozen=True)
class _Fit:
    """coef; bread: the inverse Hessian; score: each row's score (n, coefficients); eta: the
    linear predictor (the linear fit: without the fixed effects); absorbed: the linear fit's
    slopes with the fixed effects projected out, Poisson's whole design; noise: the mean
    squared residual (Poisson: of the counts)."""

    coef: np.ndarray
    bread: np.ndarray
    score: np.ndarray
    eta: np.ndarray
    absorbed: np.ndarray
    noise: float


def _linear(y: np.ndarray, terms: _Terms, group: np.ndarray, period: np.ndarray) -> _Fit:
    """OLS with the group (unit or cohort) and period effects absorbed exactly (FWL), so the
    cost grows with the rows, not with the number of units."""
    absorbed = absorb_two_way(np.column_stack([terms.slopes, y]), group, period)
    x, resid_y = absorbed[:, :-1], absorbed[:, -1]
    bread = _inverse(x.T @ x)
    coef = bread @ (x.T @ y)
    e = resid_y - x @ coef
    return _Fit(coef, bread, x * e[:, None], terms.slopes @ coef, x, float(e @ e / len(e)))


def _poisson(y: np.ndarray, design: np.ndarray, offset: np.ndarray | None) -> _Fit:
    """Poisson QMLE with the fixed effects as dummies (their uncertainty enters the response
    scale's delta method, as in etwfe)."""
    if np.any(y < 0):
        raise EstimationError(
            "Poisson ETWFE needs counts ≥ 0",
            where="outcome",
            fix="use family: linear for outcomes that can be negative",
        )
    glm = GLM(y, design, family=Poisson(), offset=offset)
    coef = np.asarray(glm.fit(method="newton", maxiter=200, tol=1e-12).params)
    eta = design @ coef + (0.0 if offset is None else np.asarray(offset, float))
    mu = np.exp(eta)
    bread = _inverse(design.T @ (design * mu[:, None]))
    e = y - mu
    return _Fit(coef, bread, design * e[:, None], eta, design, float(e @ e / len(e)))


def _dummies(
    terms: _Terms, groups: np.ndarray, cohort: np.ndarray, period: np.ndarray, unit_effects: bool
) -> tuple[np.ndarray, list[str]]:
    """The slopes then intercept, period and unit (or cohort) dummies, with their names."""
    periods = np.unique(period)
    fixed = [np.ones(len(period))] + [(period == t).astype(float) for t in periods[1:]]
    names = ["intercept"] + [f"period {_label(t)}" for t in periods[1:]]
    if unit_effects:
        fixed += [(groups == u).astype(float) for u in range(1, groups.max() + 1)]
        names += [f"unit {u}" for u in range(1, groups.max() + 1)]
    else:
        fixed += [(cohort == g).astype(float) for g in terms.cohorts[:-1]]
        names += [f"cohort {_label(g)}" for g in terms.cohorts[:-1]]
    return np.hstack([terms.slopes, np.column_stack(fixed)]), names


def _inverse(m: np.ndarray) -> np.ndarray:
    """m⁻¹, or an EstimationError when the design is collinear."""
    s = np.linalg.svd(m, compute_uv=False)
    if s.size and s.min() <= 1e-10 * s.max():
        raise EstimationError(
            "the ETWFE design is collinear: a covariate does not vary within cohorts and "
            "periods, or a cell has no comparison",
            where="estimator.covariates",
            fix="drop covariates that are constant within cohort or period",
        )
    return np.linalg.inv(m)


def _codes(v: np.ndarray) -> np.ndarray:
    return np.unique(v, return_inverse=True)[1]


@dataclass(frozen=True)
class _Terms:
    """The regression's slopes: treatment terms first (n_treatment columns), then the
    covariate terms; the treated rows; the cohorts, never treated (inf) last."""

    slopes: np.ndarray
    names: tuple[str, ...]
    n_treatment: int
    rows: np.ndarray
    cohorts: np.ndarray


def _terms(
    cohort: np.ndarray, period: np.ndarray, x: np.ndarray, control: Control, absorbed: bool
) -> _Terms:
    """Treatment cells D_gt and D_gt·(x − X̄_g), then x, x by cohort and x by period (x and x
    by cohort left out when unit effects absorb them)."""
    if not np.isfinite(cohort).any():
        raise EstimationError(
            "no unit is ever treated", where="first_treated", fix="check the rollout dates"
        )
    if control == "never" and np.isfinite(cohort).all():
        raise EstimationError(
            "never-treated controls asked for, but every unit is treated",
            where="estimator.control",
            fix="use control: notyet",
        )
    periods, cohorts = np.unique(period), np.unique(cohort)  # inf (never treated) last
    if np.isfinite(cohorts[-1]):  # no never treated: the last cohort is the reference
        cohorts = np.append(cohorts[cohorts != cohorts[-1]], cohorts[-1])
    window = (period >= cohort) if control == "notyet" else np.isfinite(cohort)
    if control == "never":
        window &= period != _previous(cohort, periods)
    cells = sorted({(g, t) for g, t in zip(cohort[window], period[window], strict=True)})
    if not cells:
        raise EstimationError(
            "no treated cell falls in the data's periods",
            where="first_treated",
            fix="check that treated units have periods at or after their start",
        )
    x_dm = x - _group_means(x, cohort)
    # an interaction whose covariate does not vary across its cell's rows (a cohort of one
    # unit, a time-invariant covariate) is zero or the cell's indicator over again: collinear,
    # so left out, as fixest drops it
    tiny = 1e-12 * (1.0 + np.abs(x).max(initial=0.0))
    cols, names = [], []
    for g, t in cells:
        d = ((cohort == g) & (period == t)).astype(float)
        cols.append(d[:, None])
        names.append(f"D[{_label(g)},{_label(t)}]")
        in_cell = x_dm[d > 0]
        varies = np.ptp(in_cell, axis=0) > tiny if len(in_cell) else np.zeros(x.shape[1], bool)
        cols.append(d[:, None] * x_dm[:, varies])
        names += [f"D[{_label(g)},{_label(t)}]·x{j}" for j in np.flatnonzero(varies)]
    n_treatment = len(names)
    if not absorbed:
        cols.append(x)
        names += [f"x{j}" for j in range(x.shape[1])]
        for g in cohorts[:-1]:
            cols.append((cohort == g)[:, None] * x)
            names += [f"cohort {_label(g)}·x{j}" for j in range(x.shape[1])]
    for t in periods[1:]:
        cols.append((period == t)[:, None] * x)
        names += [f"period {_label(t)}·x{j}" for j in range(x.shape[1])]
    return _Terms(np.hstack(cols), tuple(names), n_treatment, np.flatnonzero(window), cohorts)


def _constant(x: np.ndarray, groups: np.ndarray) -> bool:
    """Every covariate is constant within every unit."""
    if not x.shape[1]:
        return True
    first = np.zeros((groups.max() + 1, x.shape[1]))
    first[groups] = x
    return bool(np.allclose(x, first[groups]))


def etwfe_effects(
    fit: EtwfeFit,
    aggregation: Aggregation = "simple",
    scale: Literal["response", "link"] = "response",
    post_only: bool = True,
) -> EtwfeEffects:
    """Average treatment effects over the treated rows, grouped as etwfe's `emfx(type=)`:
    "simple" (all rows), "group" (cohort), "calendar" (period) or "event" (period − cohort).
    `scale`: the Poisson fit's response (a count or rate difference) or link (log ratio);
    `post_only`: drop rows before treatment (never-treated controls only)."""
    keep = np.ones(len(fit.rows), bool)
    event = fit.period - fit.cohort
    if post_only or aggregation != "event":
        keep = event >= 0
    if fit.family == "poisson" and scale == "response":
        mu1 = np.exp(fit.eta1)
        mu0 = np.exp(fit.eta1 - fit.treated_design @ fit.coef)
        contrast = mu1 - mu0
        # d(μ₁ − μ₀)/dβ = μ₁ d + (μ₁ − μ₀) x₀: d the treatment terms, x₀ the covariate terms
        grad = fit.treated_design * mu1[:, None] + fit.control_design * contrast[:, None]
    else:
        contrast = fit.treated_design @ fit.coef
        grad = fit.treated_design
    if aggregation == "simple":
        keys = np.zeros(len(keep))
    else:
        keys = {"group": fit.cohort, "calendar": fit.period, "event": event}[aggregation]
    labels, est, grads, counts = [], [], [], []
    for k in np.unique(keys[keep]):
        sel = keep & (keys == k)
        labels.append("ATT" if aggregation == "simple" else _label(k))
        est.append(contrast[sel].mean())
        grads.append(grad[sel].mean(axis=0))
        counts.append(int(sel.sum()))
    gradient = np.array(grads)
    return EtwfeEffects(
        labels=tuple(labels),
        estimate=np.array(est),
        vcov=gradient @ fit.vcov @ gradient.T,
        n_rows=np.array(counts),
        gradient=gradient,
    )


def _previous(cohort: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """The last observed period before each cohort's start (the never-treated design's
    reference period); NaN where there is none."""
    out = np.full(len(cohort), np.nan)
    finite = np.isfinite(cohort)
    pos = np.searchsorted(periods, cohort[finite]) - 1
    out[finite] = np.where(pos >= 0, periods[np.clip(pos, 0, None)], np.nan)
    return out


def _group_means(x: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Each row's mean of x over the rows sharing its key."""
    if not x.shape[1]:
        return x
    codes = np.unique(key, return_inverse=True)[1]
    sums = np.zeros((codes.max() + 1, x.shape[1]))
    np.add.at(sums, codes, x)
    return (sums / np.bincount(codes)[:, None])[codes]


def _label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
