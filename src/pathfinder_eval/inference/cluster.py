"""t-reference summaries and joint Wald tests for any estimate with a covariance matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class TSummary:
    """Per-coefficient inference. All arrays have shape (k,)."""

    std_error: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: float  # NaN when the rows have their own df

    def row(self, j: int, term: str, estimate: float, **extra: Any) -> dict[str, Any]:
        """Coefficient j as an estimates-table row (fixed columns, df, then `extra`)."""
        return {
            "term": term,
            "estimate": estimate,
            "std_error": self.std_error[j],
            "statistic": self.statistic[j],
            "p_value": self.p_value[j],
            "ci_lower": self.ci_lower[j],
            "ci_upper": self.ci_upper[j],
            "df": self.df,
            **extra,
        }


# A variance (or its trace per unit error variance) below this fraction of its natural scale
# is rounding of a variance that is zero whatever the outcomes: every cell the estimate rests
# on is fitted exactly, so it is not estimated (NaN), not zero. Measured in review on 900
# fuzzed imputation panels: such rows ≤ 4.6e-16, others ≥ 2e-3 (about 1 / comparison units).
VACANT = 1e-10


def blank_vacant(
    vcov: np.ndarray,
    df: float | np.ndarray,
    norms: np.ndarray,
    noise: float,
    magnitude: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A sandwich covariance and df with the rows whose variance is rounding of zero made
    NaN (no standard error, interval or df): rows of estimates linear in the outcomes with
    weights w (first-order weights for a nonlinear fit; `norms`: each row's ‖w‖², which is
    cᵀ(X̃ᵀX̃)⁻¹c for OLS contrasts c) whose variance is at most VACANT × ‖w‖² × `noise`, the
    fit's mean squared residual, as when every cell a row rests
    on is fitted exactly (a single-unit cohort against cells the model fits exactly): its
    scores are rounding and its SE ~1e-16 read as p ≈ 0. The residuals' scale, not the
    outcomes', so levels the fixed effects absorb and counts of very different sizes do not
    move the line (found in review: var(y) blanked ordinary rows); floored at the rounding of
    outcomes of this `magnitude` (the largest |y|), so a fit exact everywhere has none."""
    df = np.broadcast_to(np.asarray(df, float), (vcov.shape[0],)).copy()
    rounding = 1e6 * np.finfo(float).eps * magnitude
    scale = np.asarray(norms, float) * max(noise, rounding**2)
    vacant = np.diag(vcov) <= VACANT * scale
    if not vacant.any():
        return vcov, df
    vcov = vcov.copy()
    vcov[vacant], vcov[:, vacant], df[vacant] = np.nan, np.nan, np.nan
    return vcov, df


def squared_norms(weights: np.ndarray) -> np.ndarray:
    """Each row's ‖w‖² of weights (rows × n), for `blank_vacant`."""
    return np.einsum("ij,ij->i", weights, weights)


def vacant_rows(rows: list[dict[str, Any]], key: str) -> list[str]:
    """The warning for rows whose variance `key` is zero whatever the outcomes (NaN standard
    error: imputation's own, or a sandwich's through `blank_vacant`), if any."""
    vacant = [r["term"] for r in rows if not np.isfinite(r["std_error"])]
    if not vacant:
        return []
    why = (
        "The conservative variance is zero whatever the outcomes: each treated cell of the "
        "row is its own τ̄ (alone in its averaging group) and its imputed outcome comes from "
        "untreated cells the model fits exactly."
        if key in ("bjs_leave_out", "bjs_conservative")
        else "Its variance cannot be estimated: the model fits exactly cells the row rests on "
        "(one treated unit, or a comparison unit alone in some periods), so their noise "
        "leaves no residual and the cluster-robust variance would leave it out. The pooled "
        "variance (10 or more comparison units observed in every period) learns that noise "
        "from the comparison units."
        if key == "cr2"
        else "Its variance is zero whatever the outcomes: the model fits every cell the row "
        "rests on exactly (one treated unit against comparisons it fits exactly)."
    )
    return [f"{', '.join(vacant)}: no standard error or interval. {why}"]


def t_summary(
    estimate: np.ndarray, vcov: np.ndarray, df: float | np.ndarray, level: float
) -> TSummary:
    """Standard errors, t statistics, two-sided p-values and CIs with a t(df) reference; df a
    scalar or one per estimate."""
    se = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se > 0, estimate / se, np.nan)
    p = 2.0 * stats.t.sf(np.abs(stat), df)
    crit = stats.t.ppf(0.5 + level / 2.0, df)
    common = float(df) if np.ndim(df) == 0 else np.nan
    return TSummary(se, stat, p, estimate - crit * se, estimate + crit * se, common)


def wald_test(estimate: np.ndarray, vcov: np.ndarray, df_denom: float) -> dict[str, float]:
    """Joint test that all `estimate` are zero: F = bᵀV⁻¹b / q against F(q, df_denom)
    (χ²(q)/q when df_denom is infinite); on the directions with variance, q their number,
    when V is singular to rounding."""
    q = len(estimate)
    if not np.any(vcov) or not np.isfinite(vcov).all():  # no variance to test against
        nan = float("nan")
        return {"statistic": nan, "df_num": float(q), "df_denom": float(df_denom), "p_value": nan}
    values, vectors = np.linalg.eigh((vcov + vcov.T) / 2)
    if values[0] <= VACANT * values[-1]:
        # a combination with variance of rounding (leads fitted exactly): F on the directions
        # with variance, q their number (its own rounding read F ~ 1e15, p ≈ 0, or F < 0)
        kept = values > VACANT * values[-1]
        q = int(kept.sum())
        stat = float(np.sum((vectors[:, kept].T @ estimate) ** 2 / values[kept])) / q
    else:
        stat = float(estimate @ np.linalg.pinv(vcov) @ estimate) / q
    # F(q, ∞) is χ²(q)/q: a normal reference
    p = stats.f.sf(stat, q, df_denom) if np.isfinite(df_denom) else stats.chi2.sf(stat * q, q)
    return {
        "statistic": stat,
        "df_num": float(q),
        "df_denom": float(df_denom),
        "p_value": float(p),
    }


def joint_zero_test(
    estimate: np.ndarray, vcov: np.ndarray, df: np.ndarray, rows: np.ndarray | list[int]
) -> dict[str, float] | None:
    """`wald_test` of the `rows` of an estimate (leads, placebos) with the smallest of their
    degrees of freedom `df`, leaving out rows without a variance (NaN: `blank_vacant`, whose
    rounding would read as a certain rejection); None when no such row is left."""
    rows = np.asarray(rows, dtype=int)
    rows = rows[np.isfinite(np.diag(vcov)[rows])]
    if not rows.size:
        return None
    return wald_test(estimate[rows], vcov[np.ix_(rows, rows)], float(np.asarray(df)[rows].min()))


def untested_leads(terms: list[str], any_tested: bool) -> list[str]:
    """The warning for leads left out of a pre-trend test as having no variance, if any."""
    if not terms:
        return []
    return [
        f"Pre-trend test without {', '.join(terms)}: every cell they rest on is fitted "
        "exactly, so they have no variance to test against"
        + ("." if any_tested else " (the test is not run).")
    ]


def equal_test(
    estimate: np.ndarray, vcov: np.ndarray, df: np.ndarray, rows: np.ndarray | list[int]
) -> dict[str, float] | None:
    """`wald_test` that the `rows` of an estimate (effects at successive exposures) are all
    equal: the q − 1 contrasts of the first q − 1 with their mean (de Chaisemartin &
    D'Haultfœuille's effects_equal); None with fewer than two rows."""
    rows = np.asarray(rows, dtype=int)
    if rows.size < 2:
        return None
    q = rows.size
    contrast = np.eye(q)[:-1] - 1.0 / q
    b, v = contrast @ estimate[rows], contrast @ vcov[np.ix_(rows, rows)] @ contrast.T
    return wald_test(b, (v + v.T) / 2, float(np.asarray(df)[rows].min()))


def rescale_covariance(vcov: np.ndarray, std_error: np.ndarray) -> np.ndarray:
    """`vcov` with its correlations kept and its diagonal set to std_error² (for standard
    errors from another variance estimator); rows of zero variance stay zero."""
    sd = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    scale = np.divide(std_error, sd, out=np.zeros_like(sd), where=sd > 0)
    return vcov * np.outer(scale, scale)
