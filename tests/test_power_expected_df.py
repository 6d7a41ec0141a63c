"""The Kenward-Roger and Satterthwaite df analytic power reads for a trial's LMM, against the
df the analysis itself reports on simulated trials of the same design."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathfinder_eval.power.analytic import VarianceModel, gls_precision, mdes, power
from pathfinder_eval.power.expected_df import small_sample_reference
from pathfinder_eval.power.trial_simulation import Chunk, TrialModel, run_chunk


def stepped(starts: list[int], periods: int) -> np.ndarray:
    s = np.asarray(starts)[:, None]
    return (np.arange(1, periods + 1)[None, :] >= s).astype(float)


@pytest.mark.parametrize(
    ("starts", "periods", "icc", "size", "structure"),
    [
        ([2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5], 5, 0.05, 30, "nested_exchangeable"),
        ([2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5], 5, 0.2, 10, "nested_exchangeable"),
        ([2, 2, 3, 3, 4, 4], 4, 0.1, 20, "nested_exchangeable"),
        ([2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5], 5, 0.2, 10, "hussey_hughes"),
    ],
)
def test_kenward_roger_df_at_the_truth_is_the_centre_of_the_fitted_df(
    starts, periods, icc, size, structure
):
    """The median Kenward-Roger df of 120 simulated trials' REML fits (the fast path runs the
    same fit and df as the report) is within 5% of the df at the true variances: 49.0 against
    48.65 on the example trial (12 clusters, ICC 0.05, 30 per cell), where the t(I − 2)
    stand-in said 10."""
    design = stepped(starts, periods)
    model = VarianceModel.from_icc(icc)
    ref = small_sample_reference(design, model, size, structure, "kenward_roger")
    fitted = run_chunk(Chunk(TrialModel(design, model, size, structure), (0.0,), 7, 0, 120))[0, 2]
    fitted = fitted[np.isfinite(fitted)]
    assert len(fitted) >= 110
    assert ref.df == pytest.approx(float(np.median(fitted)), rel=0.05)
    assert 1.0 < ref.inflation < 1.1  # the adjustment adds the variance of the estimated θ


def test_the_example_trials_kenward_roger_power_is_what_simulation_gives():
    """12 clusters, 4 sequences, ICC 0.05, 30 per cell, effect 0.3, KR on a nested
    exchangeable LMM: 2,000 simulated trials gave power 0.948 (Monte Carlo SE 0.005) and an
    MDES of 0.2393 (interval 0.2335–0.2435); the t(I − 2) stand-in said 0.915 and 0.2514. At the
    trial's own variances: t(48.65) and Kenward-Roger's 3.0% larger variance give 0.947 and
    0.2348."""
    design = stepped([2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5], 5)
    model = VarianceModel.from_icc(0.05)
    ref = small_sample_reference(design, model, 30, "nested_exchangeable", "kenward_roger")
    variance = gls_precision(design, model, 30).variance * ref.inflation
    assert ref.df == pytest.approx(48.65, abs=0.01)
    assert ref.inflation == pytest.approx(1.030, abs=0.001)
    assert abs(power(0.3, variance, 0.05, ref.df) - 0.948) < 2 * 0.005
    assert 0.2335 <= mdes(variance, df=ref.df) <= 0.2435


def test_satterthwaite_without_adjustment_and_the_time_averaged_effect():
    """Satterthwaite reports the unadjusted variance (inflation 1) and, at interior truth,
    df close to Kenward-Roger's; the time-averaged effect has its own df."""
    design = stepped([2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5], 5)
    model = VarianceModel.from_icc(0.05, cac=0.8)  # γ² > 0: no parameter at its boundary
    kr = small_sample_reference(design, model, 30, "nested_exchangeable", "kenward_roger")
    sat = small_sample_reference(design, model, 30, "nested_exchangeable", "satterthwaite")
    assert sat.inflation == 1.0 and sat.df == pytest.approx(kr.df, rel=0.1)
    tate = small_sample_reference(
        design, model, 30, "nested_exchangeable", "kenward_roger", "exposure_time"
    )
    assert tate.df != pytest.approx(kr.df, rel=0.01)
    fitted = run_chunk(
        Chunk(
            TrialModel(design, model, 30, "nested_exchangeable", "satterthwaite"), (0.0,), 3, 0, 80
        )
    )[0, 2]
    assert sat.df == pytest.approx(float(np.nanmedian(fitted)), rel=0.1)


def test_the_design_reads_kenward_roger_df_only_where_they_were_checked():
    """With two clusters KR's fitted df fall below 5 in 38% of trials (the df at the truth
    gave power 0.136 against 0.053 simulated) and cluster_plus_decay's decay is unidentified
    without cluster-period variance (0.947 against 0.814): both keep the t(I − 2) stand-in,
    floored at t(1), never the normal; the power table names KR's variance adjustment."""
    from pathfinder_eval.power.design import design_power, primary_estimand
    from pathfinder_eval.spec import load_design

    spec = load_design(
        Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
    )
    kr = next(a for a in spec.analyses if a.id == "stepped_wedge_immediate")
    assert kr.inference.method == "kenward_roger"

    def with_kr(options: dict, rollout=spec.rollout):
        a = kr.model_copy(update={"primary": True, "options": {**kr.options, **options}})
        return spec.model_copy(update={"analyses": (a,), "rollout": rollout})

    assert primary_estimand(with_kr({})).df == pytest.approx(48.65, abs=0.01)
    assert primary_estimand(with_kr({"model": "cluster_plus_decay"})).df == 10
    five = (*spec.rollout[:1], spec.rollout[1].model_copy(update={"units": ("C01", "C05")}))
    assert primary_estimand(with_kr({}, five)).df == 3  # 5 clusters: t(I − 2)
    two = (spec.rollout[0].model_copy(update={"units": ("C03", "C07")}),)
    assert primary_estimand(with_kr({}, two)).df == 1
    summary = design_power(with_kr({}))
    assert "; variance × 1.030, Kenward-Roger's adjustment" in summary.model
    assert "Kenward-Roger" not in design_power(with_kr({}), reference="z").model


def test_an_analysis_named_for_an_outcome_it_does_not_analyse_is_refused():
    """`power --analysis A --outcome O` read A's estimand though A does not analyse O."""
    from pathfinder_eval.errors import DesignError
    from pathfinder_eval.power.design import primary_estimand
    from pathfinder_eval.spec import load_design

    spec = load_design(
        Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
    )
    first, *rest = spec.analyses
    spec = spec.model_copy(
        update={"analyses": (first.model_copy(update={"outcomes": ("other",)}), *rest)}
    )
    assert primary_estimand(spec, analysis=first.id).analysis == first.id
    with pytest.raises(DesignError, match=f"analysis '{first.id}' does not analyse outcome"):
        primary_estimand(spec, analysis=first.id, outcome="score")


def test_a_two_outcome_simulated_trial_and_a_linear_trend_are_said():
    """Analytic power ran on a simulated trial with two outcomes, which `run`, `plan` and
    `validate` refuse, and labelled an analysis with linear period effects as if they were
    categorical (found in review)."""
    from pathfinder_eval.errors import DesignError
    from pathfinder_eval.power.design import design_power, primary_estimand
    from pathfinder_eval.spec import Outcome, load_design

    spec = load_design(
        Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
    )
    two = spec.model_copy(update={"outcomes": (*spec.outcomes, Outcome(column="other"))})
    with pytest.raises(DesignError, match="a simulated trial has one outcome; the design lists 2"):
        design_power(two)
    first, *rest = spec.analyses
    linear = first.model_copy(update={"options": {**first.options, "period_effects": "linear"}})
    text = primary_estimand(spec.model_copy(update={"analyses": (linear, *rest)})).text
    assert "with categorical period effects where the analysis fits linear ones" in text


REFERENCE = Path(__file__).resolve().parent / "reference/r_pbkrtest_design_df/values.csv"


def test_kenward_roger_df_and_adjustment_equal_pbkrtests_at_the_same_parameters():
    """Kenward-Roger's df and adjusted variance depend on the design and the variance
    parameters only: at the parameters lme4 fitted to four seeded balanced trials (Hussey &
    Hughes and nested exchangeable, 12 and 8 clusters, 30 and 8 per cell), pbkrtest's KRmodcomp
    df and vcovAdj/vcov ratio (tests/reference/r_pbkrtest_design_df/kr_design_df.R) are
    reproduced to 1e-8."""
    import pandas as pd

    values = pd.read_csv(REFERENCE)
    assert len(values) == 4
    for row in values.itertuples():
        starts = np.array([int(x) for x in row.starts.split()])
        design = stepped(list(starts), int(row.periods))
        model = VarianceModel(tau2=row.tau2, sigma2=row.sigma2, gamma2=row.gamma2)
        ref = small_sample_reference(design, model, int(row.m), row.model, "kenward_roger")
        assert ref.df == pytest.approx(row.df, rel=1e-8), (row.case, row.model)
        assert ref.inflation == pytest.approx(row.inflation, rel=1e-8), (row.case, row.model)
