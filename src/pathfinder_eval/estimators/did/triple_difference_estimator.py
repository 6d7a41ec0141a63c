"""A design's triple difference on individual records: the people the reader kept (records
with data.columns.individual and eligible), in the panel's cells, fitted by the same engine
as `pe.triple_difference` with the LA as the cluster and its start from the rollout."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from pathfinder_eval.errors import EstimationError
from pathfinder_eval.estimators.did.triple_difference import fit_triple_difference
from pathfinder_eval.estimators.did.unit_records import RecordNames, unit_panel
from pathfinder_eval.panel import ValidatedPanel
from pathfinder_eval.results import Dropped, EffectEstimates
from pathfinder_eval.settings import TripleDifferenceOptions

# the engine's variance by the design's inference method
VARIANCE = {"default": "cr2", "cr2": "cr2", "cluster_robust": "influence_function"}


class TripleDifference(TripleDifferenceOptions):
    """Triple differences on the design's individual records (estimators/did/
    triple_difference.py): each person is a unit, followed over periods, in an LA (the
    cluster) that starts as the rollout says or is a comparison.

    Only records in the panel's cells are used, so the panel's exclusions (comparison pool,
    time window, transition periods) apply as to every other analysis; the records the reader
    or the panel left out are counted there. Rows the engine leaves out are counted here in
    cluster-periods, as the report counts records. Inference: "default" and "cr2" are CR2 by
    LA with Bell-McCaffrey df (held its size with 4 and 10 treated LAs of 60,
    benchmarks/ddd_units_validity.py); "cluster_robust" sums the influence functions within
    LAs with a t(G − 1) reference."""

    def fit(
        self, panel: ValidatedPanel, outcome: str, analysis_id: str, level: float = 0.95
    ) -> EffectEstimates:
        records = panel.data.records
        if records is None or "eligible" not in records or "individual" not in records:
            raise EstimationError(
                "triple_difference needs the individual records (with their person and "
                "eligibility columns) kept by the reader",
                where=f"analyses[{analysis_id}].estimator",
                fix="set data.source: records with data.columns.individual and eligible",
            )
        cells = panel.outcome_cells(outcome)
        at = pd.MultiIndex.from_frame(cells[["unit", "period"]]).get_indexer(
            pd.MultiIndex.from_frame(records[["unit", "period"]])
        )
        keep = (at >= 0) & records[outcome].notna().to_numpy()
        part = records[keep]
        frame = pd.DataFrame(
            {
                "y": part[outcome].to_numpy(float),
                "person": part["individual"].to_numpy(),
                "period": part["period"].to_numpy(float),
                "start": cells["cohort"].to_numpy(float)[at[keep]],
                "eligible": part["eligible"].to_numpy(),
                "la": part["unit"].to_numpy(),
                **{c: part[c].to_numpy(float) for c in self.covariates},
            }
        )
        if frame.empty:
            raise EstimationError(
                f"no records of {outcome} fall in the panel's cells",
                where=f"analyses[{analysis_id}]",
                fix="check that the records' LA ids are the rollout's (data.columns.unit) and "
                "their periods inside the time window",
            )
        _starts_observed(frame, panel, outcome, analysis_id)
        unit_panel_, codes, dropped, notes = unit_panel(
            frame,
            "y",
            "person",
            "period",
            "start",
            "eligible",
            self.covariates,
            "la",
            self._names(panel, outcome, np.flatnonzero(keep) + 1),
        )
        res = fit_triple_difference(
            unit_panel_,
            outcome=outcome,
            covariates=self.covariates,
            method=self.method,
            base_period=self.base_period,
            covariates_at=self.covariates_at,
            control_group=self.control_group,
            cluster=codes,
            level=level,
            inference=VARIANCE[self.inference.method],
            dropped=_in_cells(dropped, frame),
            notes=_late_in_las(frame, panel, outcome) if notes else (),
            label=lambda period: panel.period_label(int(period)),
        )
        cohorts = {c["cohort"] for c in res.facts.att_gt}
        left_out = set().union(*(d.units for d in dropped))
        used = frame[~frame["person"].isin(left_out)] if left_out else frame
        treated = used.loc[used["start"].isin(cohorts), "la"]
        return replace(
            res,
            analysis_id=analysis_id,
            inference=replace(res.inference, chosen_by_default=self.inference.method == "default"),
            n_units=int(used["la"].nunique()),
            n_treated=int(treated.nunique()),
            n_obs=len(used[["la", "period"]].drop_duplicates()),
        )

    @staticmethod
    def _names(panel: ValidatedPanel, outcome: str, rows: np.ndarray) -> RecordNames:
        """Errors name the records file's columns and rows."""
        cols = panel.spec.data.columns
        column = next(o.column for o in panel.spec.outcomes if o.id == outcome)
        roles = {
            "outcome": f"column {column}",
            "unit": f"column {cols.individual}",
            "time": f"column {cols.period}",
            "eligible": f"column {cols.eligible}",
            "cluster": f"column {cols.unit}",
            "first_treated": "rollout (the LA's start)",
            "data": "the records in the panel's cells",
        }
        files = panel.data.files
        return RecordNames(
            lambda role, col: roles.get(role, f"column {col}"),
            file=files[0][0] if files else None,
            rows=rows,
            unit="person",
        )


def _starts_observed(
    frame: pd.DataFrame, panel: ValidatedPanel, outcome: str, analysis_id: str
) -> None:
    """Each start inside the records' periods is one of them: the engine compares a cohort
    from its start period, so a start period without records leaves it undefined."""
    periods = np.unique(frame["period"])
    starts = np.unique(frame["start"].dropna())
    missing = [g for g in starts if periods[0] < g <= periods[-1] and g not in periods]
    if missing:
        shown = ", ".join(panel.period_label(int(g)) for g in missing)
        raise EstimationError(
            f"LAs start in {shown}, a period with no records of {outcome}: the triple "
            "difference compares each start date's LAs from their start period",
            where=f"analyses[{analysis_id}]",
            fix="supply the records of that period, or run the triple difference on an "
            "outcome recorded in it",
        )


def _late_in_las(frame: pd.DataFrame, panel: ValidatedPanel, outcome: str) -> tuple[str, ...]:
    """The engine's note on starts after the last period, in LAs (not people, which would
    be a count of children outside disclosure control)."""
    last = frame["period"].max()
    las = frame.loc[frame["start"] > last, "la"].nunique()
    return (
        f"{las} LA{'' if las == 1 else 's'} start after the last period of {outcome}'s records "
        f"({panel.period_label(int(last))}): compared as never treated, as R's did does",
    )


def _in_cells(dropped: tuple[Dropped, ...], frame: pd.DataFrame) -> tuple[Dropped, ...]:
    """The engine's exclusions (people by id, the reader's id text) as the report counts
    records: cluster-periods of the LAs they were in."""
    out = []
    for d in dropped:
        rows = frame[frame["person"].isin(d.units)]
        out.append(
            Dropped(
                d.reason,
                len(rows[["la", "period"]].drop_duplicates()),
                tuple(sorted(set(rows["la"]))),
            )
        )
    return tuple(out)
