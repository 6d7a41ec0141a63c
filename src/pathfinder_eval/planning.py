"""The `plan` command's evidence: the design's data up to the first start, and what each outcome's
pre-specified analysis could detect, computed without reading any value from the start on.

Outcome values on or after the first period any unit is exposed are withheld before any check
or estimate (status `after_first_start`); what the design can detect comes from the primary
analysis re-run on those pre-start data with every start moved earlier (the placebo-in-time
panel), whose standard error stands in for the real analysis's; trials with a simulation model
use the analytic GLS power instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pathfinder_eval.analysis_plan import cells_sha256
from pathfinder_eval.data.ees import WITHHELD
from pathfinder_eval.data.load import load_outcomes
from pathfinder_eval.data.neighbours import resolve_neighbour_pool
from pathfinder_eval.data.source import OutcomeData
from pathfinder_eval.errors import DesignError
from pathfinder_eval.estimators import one_blas_thread
from pathfinder_eval.panel import ValidatedPanel, build_panel
from pathfinder_eval.pipeline import build_estimator, describe_outcome, detectable
from pathfinder_eval.registry import entry
from pathfinder_eval.robustness import PLACEBO_SHIFT, placebo_in_time
from pathfinder_eval.spec import DesignSpec, PilotKind
from pathfinder_eval.timeaxis import PartialRule, onset, period_label

# At most this many periods the data do not have yet are padded before a plan (`awaited_periods`)
MOST_AWAITED = 60
# Fewer pre-start periods than this for the first wave once its start is moved earlier: the
# placebo's MDES is then said to overstate the analysis's (its df fall: 25 to 3 on 2021–2023)
SHORT_PRE_PERIODS = 3


@dataclass(frozen=True)
class PlanEvidence:
    """The pre-start panel, the first withheld period and each outcome's detectable effect."""

    spec: DesignSpec
    panel: ValidatedPanel
    first_withheld: int
    withheld_rows: int
    detectable: tuple[dict[str, Any], ...]

    @property
    def pre_start_sha256(self) -> str:
        """sha256 of the pre-start cells the plan used (unit, period, outcome, counts, value)."""
        return cells_sha256(self.panel.cells)


def first_exposed_period(spec: DesignSpec) -> int:
    """The first period in which any unit is exposed, even partly (its values are post-start)."""
    return min(
        onset(spec.time.axis, start, PartialRule.ANY_EXPOSURE).first_treated
        for start in spec.start_of().values()
    )


def withhold_after(data: OutcomeData, first: int) -> tuple[OutcomeData, int]:
    """The data with every value from period `first` on blanked (status `after_first_start`)
    and individual records from then dropped, and how many rows were withheld."""
    frame = data.frame.copy()
    late = frame["period"].astype("int64") >= first
    numbers = [c for c in frame.columns if c != "period" and frame[c].dtype.kind == "f"]
    frame.loc[late, numbers] = math.nan  # numerator, denominator, value and cell summaries
    frame.loc[late, "status"] = WITHHELD
    records = data.records
    if records is not None:
        records = records[records["period"].astype("int64") < first].reset_index(drop=True)
    return replace(data, frame=frame, records=records), int(late.sum())


def awaited_periods(data: OutcomeData, spec: DesignSpec) -> OutcomeData:
    """Data that end before a wave's first treated period, as they do when the plan is written
    before the outcome data exist, gain blank rows (status `after_first_start`) for each unit
    and outcome of their last period, up to the latest wave's first treated period: the panel
    places each start in a period of the data (the plan refused 'start ... outside the data:
    after its last period'; found in review)."""
    frame = data.frame
    last = int(frame["period"].max())
    if last >= first_exposed_period(spec):  # the data reach a start: the panel's checks apply
        return data
    rule = spec.time.partial_period_rule
    latest = max(onset(spec.time.axis, s, rule).first_treated for s in spec.start_of().values())
    if latest - last > MOST_AWAITED:
        raise DesignError(
            f"the latest start is {latest - last} periods after the data's last: the plan "
            f"would pad more than {MOST_AWAITED} periods the data do not have yet",
            file=spec.path,
            where="rollout",
            fix="check the starts (a typo in a year?), or give data closer to them",
        )
    template = frame[frame["period"] == last].copy()
    numbers = [c for c in frame.columns if c != "period" and frame[c].dtype.kind == "f"]
    template[numbers] = math.nan
    template["status"] = WITHHELD
    pads = [
        template.assign(period=frame["period"].dtype.type(p)) for p in range(last + 1, latest + 1)
    ]
    return replace(data, frame=pd.concat([frame, *pads], ignore_index=True))


def plan_evidence(spec: DesignSpec, data: Path | pd.DataFrame | None) -> PlanEvidence:
    """Load the design's data, withhold everything from the first start, and estimate what
    each outcome's pre-specified analysis could detect."""
    spec = resolve_neighbour_pool(spec, data)
    first = first_exposed_period(spec)
    raw, withheld = withhold_after(load_outcomes(spec, data, spec.seed), first)
    raw = awaited_periods(raw, spec)
    panel = build_panel(_pre_start_spec(spec), raw, describe_outcome(spec))
    rows = tuple(_detectable(spec, panel, info.id) for info in panel.outcomes)
    return PlanEvidence(spec, panel, first, withheld, rows)


def _pre_start_spec(spec: DesignSpec) -> DesignSpec:
    """The design the pre-start panel is built with. A simulated trial's detectable effect is
    analytic and needs no outcome value, so a trial whose first wave starts in the first
    period (no pre-start data at all) is planned too: its outcomes are not required there."""
    if spec.data.trial is None:
        return spec
    optional = tuple(o.model_copy(update={"required": False}) for o in spec.outcomes)
    return spec.model_copy(update={"outcomes": optional})


def _detectable(spec: DesignSpec, panel: ValidatedPanel, outcome: str) -> dict[str, Any]:
    """What the outcome's primary (else first placebo-capable) analysis could detect."""
    base = {
        "outcome": outcome,
        "analysis": "",
        "basis": "",
        "note": "",
        "mdes": math.nan,
        "mdes_relative": math.nan,
        "expected": _expected(spec, outcome),
        "could_detect": None,
        "inference": "",
    }
    if spec.pilot is PilotKind.TRIAL and spec.data.trial is not None:
        return {**base, **_trial_detectable(spec, outcome)}
    candidates = [
        (i, a)
        for i, a in enumerate(spec.analyses)
        if a in spec.analyses_for(outcome) and entry(a.estimator).placebo
    ]
    candidates.sort(key=lambda pair: not pair[1].primary)
    if not candidates:
        names = ", ".join(a.id for a in spec.analyses_for(outcome)) or "none"
        return {
            **base,
            "note": f"not computed before the data: its analyses ({names}) cannot be re-run "
            "on pre-start data with moved starts; the report gives their intervals",
        }
    index, analysis = candidates[0]
    if not next(o for o in panel.outcomes if o.id == outcome).available:
        return {**base, "analysis": analysis.id, "note": "no usable pre-start data"}
    est = build_estimator(spec, index, spec.seed)
    with one_blas_thread():
        (run,) = placebo_in_time(panel, [(analysis, outcome, est)])
        if run.result is None:
            return {**base, "analysis": analysis.id, "note": run.note}
        det = detectable(panel, run.result)
    used = run.result.inference
    label = period_label(spec.time.axis, run.window[0]), period_label(spec.time.axis, run.window[1])
    seen = sorted(set(panel.outcome_cells(outcome)["period"].tolist()))  # all pre-start
    before = sum(p < min(run.fake_starts.values()) for p in seen)
    few = (
        f"With the starts moved, the first wave has {before} period(s) before its start where "
        f"the analysis will have {len(seen)}: its degrees of freedom fall, so this MDES "
        "can be far larger than the analysis's own (`pathfinder-eval power DESIGN --simulate N "
        "--data DIR` simulates the analysis on panels like the real one)"
        if before < SHORT_PRE_PERIODS
        else ""
    )
    return {
        **base,
        "note": few,
        "analysis": analysis.id,
        "basis": f"{analysis.id} on {label[0]}–{label[1]} with every start moved "
        f"{PLACEBO_SHIFT} periods earlier",
        "mdes": det.mdes if det else math.nan,
        "mdes_relative": det.mdes_relative if det else math.nan,
        "expected": _expected(spec, outcome),
        "could_detect": det.could_detect_expected if det else None,
        "inference": used.label,
    }


def _trial_detectable(spec: DesignSpec, outcome: str) -> dict[str, Any]:
    """A simulated trial's MDES (80% power, two-sided 5%) for the estimand the outcome's
    primary stepped-wedge analysis reports, with that analysis's reference: the design power
    (`power.design.design_power`) the power command and the report give. The analysis's own
    variance is estimated, and less efficient than GLS when cluster-robust, so the figure is a
    lower bound: `power --simulate` runs the analysis itself."""
    from pathfinder_eval.power.design import design_power, primary_estimand

    estimand = primary_estimand(spec, outcome=outcome)
    summary = design_power(spec, 0.05, "analysis", estimand=estimand)
    trial = spec.data.trial
    return {
        "analysis": f"{estimand.analysis or spec.analyses_for(outcome)[0].id}: analytic GLS power",
        "basis": f"{summary.clusters} clusters, ICC {trial.icc:g}, {trial.cell_size} per "
        f"cluster-period; {estimand.text}; {summary.reference} reference, {estimand.why}; "
        "the analysis's own variance is estimated, and less efficient than GLS when it is "
        "cluster-robust, so this is a lower bound (`pathfinder-eval power DESIGN --simulate N "
        "--mdes 0.8` runs the analysis itself)",
        "mdes": summary.mdes_80,
    }


def _expected(spec: DesignSpec, outcome: str) -> float:
    value = next(o.expected_effect for o in spec.outcomes if o.id == outcome)
    return math.nan if value is None else value
