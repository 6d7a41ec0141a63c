"""Statistical disclosure control for anything a report shows about children.

Counts of children from 1 to `min_count` − 1 are suppressed (DfE suppresses 1–5; a secure
research environment may require 10). Where a table shows a total, one suppressed cell could
be recovered by subtraction, so the smallest other cell is suppressed too (secondary
suppression). Shown counts are rounded half up (never banker's rounding) to the nearest
`round_to`. Every action is logged for the appendix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import TYPE_CHECKING, Any

import pandas as pd

from pathfinder_eval.estimators.did.facts import TripleDifferenceFacts
from pathfinder_eval.estimators.synthetic.facts import SyntheticControlFacts
from pathfinder_eval.results import EffectEstimates

if TYPE_CHECKING:
    from pathfinder_eval.panel import ValidatedPanel
    from pathfinder_eval.pipeline import Evaluation


def round_half_up(value: float, unit: int) -> int:
    """Nearest multiple of `unit`, halves away from zero (2.5 → 3 for unit 1)."""
    return int(math.copysign(math.floor(abs(value) / unit + 0.5) * unit, value))


@dataclass
class DisclosureLog:
    """Running record of what control did, by table."""

    min_count: int
    round_to: int
    suppressed: dict[str, int] = field(default_factory=dict)
    rounded: dict[str, int] = field(default_factory=dict)

    def count(self, value: float, table: str) -> str:
        """A child count made safe to publish, as display text."""
        if value != value:  # NaN
            return "–"
        shown = self.number(value, table)
        return f"<{self.min_count}" if shown is None else f"{shown:,}"

    def number(self, value: float, table: str) -> int | None:
        """A child count made safe to publish, as a number: None when suppressed."""
        if value != value or 0 < value < self.min_count:
            if value == value:
                self._note(self.suppressed, table)
            return None
        rounded = round_half_up(value, self.round_to)
        if rounded != value:
            self._note(self.rounded, table)
        return rounded

    def counts_with_total(self, values: list[float], table: str) -> tuple[list[str], str]:
        """Cells and their total: primary suppression, then secondary suppression of the
        smallest shown non-zero cells until the hidden cells add up to at least min_count, as
        the total less the shown cells gives their sum back (3 and 4 hidden beside a total
        gave 7 children; found in review)."""
        small = [0 < v < self.min_count for v in values]
        while 0 < sum(v for v, hide in zip(values, small, strict=True) if hide) < self.min_count:
            others = [(v, i) for i, v in enumerate(values) if not small[i] and v > 0]
            if not others:
                break
            small[min(others)[1]] = True
        cells = []
        for v, hide in zip(values, small, strict=True):
            if hide:
                self._note(self.suppressed, table)
                cells.append("c")
            else:
                cells.append(self.count(v, table))
        return cells, self.count(sum(values), table)

    def suppress(self, table: str) -> None:
        """Count a value suppressed whatever its size (secondary suppression)."""
        self._note(self.suppressed, table)

    @staticmethod
    def _note(book: dict[str, int], table: str) -> None:
        book[table] = book.get(table, 0) + 1

    def rows(self) -> list[dict[str, object]]:
        tables = sorted(set(self.suppressed) | set(self.rounded))
        return [
            {"table": t, "suppressed": self.suppressed.get(t, 0), "rounded": self.rounded.get(t, 0)}
            for t in tables
        ]


# Counts of people a fit's facts carry (stepped-wedge designs and individual-level fits).
PEOPLE_COUNTS = ("individuals", "trials", "population", "records", "events")


def participant_counts(panel: ValidatedPanel) -> pd.DataFrame:
    """A trial's participants (cell sizes of its first outcome) by sequence (rows) and period
    (columns): the CONSORT-SW table the report shows."""
    cells = panel.cells[panel.cells["outcome"] == panel.outcomes[0].id]
    waves = panel.units.set_index("unit")["wave"]
    return cells.assign(wave=cells["unit"].map(waves)).pivot_table(
        index="wave", columns="period", values="denominator", aggfunc="sum", fill_value=0
    )


def hides_a_sequence(panel: ValidatedPanel, log: DisclosureLog) -> bool:
    """Whether the participants table suppresses a sequence's total: the trial's total of
    people would then give it back by subtraction, so the totals in the facts are suppressed
    too."""
    if panel.spec.pilot.value != "trial":
        return False
    totals = participant_counts(panel).sum(axis=1)
    return bool(((totals > 0) & (totals < log.min_count)).any())


def controlled_result(
    result: EffectEstimates, log: DisclosureLog, hide_totals: bool = False
) -> EffectEstimates:
    """The result as a report may publish it: the counts of people in its facts (the design's
    individuals, trials or population and events, the smallest, median and largest
    cluster-period size, the individual records) suppressed below `min_count` (None) and
    rounded like any table's, so the appendix and the JSON do not undo the participants
    table's control; with `hide_totals` (`hides_a_sequence`) they are suppressed whatever
    their size."""
    facts = result.facts
    if isinstance(facts, TripleDifferenceFacts):
        return replace(result, facts=_people_in_subgroups(facts, log, hide_totals))
    changes: dict[str, Any] = {}
    for name in ("design", "individual_level"):
        counts = getattr(facts, name, None)
        if not isinstance(counts, dict):
            continue
        safe = dict(counts)
        for key in PEOPLE_COUNTS:
            if key in safe:
                safe[key] = None if hide_totals else log.number(safe[key], "model facts")
                if hide_totals:
                    log.suppress("model facts")
        if isinstance(safe.get("cell_size"), dict):
            safe["cell_size"] = {
                k: log.number(v, "model facts") for k, v in safe["cell_size"].items()
            }
        changes[name] = safe
    if not changes:
        return result
    return replace(result, facts=replace(facts, **changes))


def _people_in_subgroups(
    facts: TripleDifferenceFacts, log: DisclosureLog, hide: bool
) -> TripleDifferenceFacts:
    """A triple difference's counts of people (each subgroup's, each ATT(g,t)'s targeted and
    other people), rounded as the participants table's. They are one linked set: a cell's
    other people are three subgroups' people seen in its periods, so one suppressed count
    would come back by subtraction (6 never-treated eligible children from 171 − 79 − 86;
    found in review); any count below the threshold suppresses them all."""
    counts = [*facts.units_by_subgroup.values()]
    counts += [c[k] for c in facts.att_gt for k in ("treated_eligible_units", "other_units")]
    hide = hide or any(0 < v < log.min_count for v in counts)

    def number(count: int) -> int | None:
        if hide:
            log.suppress("model facts")
            return None
        return log.number(count, "model facts")

    return replace(
        facts,
        units_by_subgroup={k: number(v) for k, v in facts.units_by_subgroup.items()},
        att_gt=[
            {
                **c,
                "treated_eligible_units": number(c["treated_eligible_units"]),
                "other_units": number(c["other_units"]),
            }
            for c in facts.att_gt
        ],
    )


def _differenced_by_few(facts: list[Any], log: DisclosureLog) -> set[int]:
    """The positions in `facts` of triple differences (of different outcomes on the same
    records) whose counts of people differ from another's by fewer than `min_count`: the
    children one analysis has and the other lacks would come back by subtraction (found in
    review). Rounding to DfE's base of 5 or more blurs such a difference, as it blurs any two
    tables; a finer rounding (1, 2) does not."""
    if log.round_to >= BLURRING_ROUND_TO:
        return set()
    counts = {}
    for i, f in enumerate(facts):
        if isinstance(f, TripleDifferenceFacts):
            named = {("subgroup", k): v for k, v in f.units_by_subgroup.items()}
            for c in f.att_gt:
                for k in ("treated_eligible_units", "other_units"):
                    named[(c["cohort"], c["period"], k)] = c[k]
            counts[i] = named
    linked = set()
    for (i, a), (j, b) in combinations(counts.items(), 2):
        if any(0 < abs(a[k] - b[k]) < log.min_count for k in a.keys() & b.keys()):
            linked |= {i, j}
    return linked


# A rounding unit from which a difference of two published counts says no exact small count.
BLURRING_ROUND_TO = 5


@dataclass(frozen=True)
class ExclusionRow:
    """One exclusion as a report publishes it: `count` is None when suppressed; `analysis`
    the id of the analysis that left the rows out (None for the data and the panel)."""

    reason: str
    outcome: str
    count: int | None
    units: tuple[str, ...]
    stage: str
    analysis: str | None


def exclusion_rows(ev: Evaluation, log: DisclosureLog) -> list[ExclusionRow]:
    """Every exclusion of the data, the panel and the analyses, for the HTML and the JSON
    alike. On child-level records each count is of children's records, so it is controlled
    like any count of children; on LA-level data it counts LA-periods and is shown as is."""
    children = ev.panel.data.kind == "records"

    def shown(count: int) -> int | None:
        return log.number(count, "exclusions") if children else count

    rows = [
        ExclusionRow(e.reason, e.outcome, shown(e.count), tuple(e.units), e.stage, None)
        for e in ev.panel.exclusions
    ]
    rows += [  # (`published` has already controlled an analysis's own counts)
        ExclusionRow(d.reason, run.outcome, d.rows, tuple(d.units), "analysis", run.analysis.id)
        for run in ev.runs
        for d in run.left_out
    ]
    return rows


# Analyses that publish one treated unit's (or cohort's) path: their gaps plus the donors'
# weights and values give the unit's rate back, period by period.
ONE_UNIT_PATHS = frozenset({"synthetic_control", "synthetic_did"})


def small_treated_count(
    panel: ValidatedPanel, outcome: str, min_count: int, donors: frozenset[str] = frozenset()
) -> str | None:
    """The first treated unit, or sole weighted donor (`donors`: sole_donors), and period
    whose count of children (numerator) is from 1 to `min_count` − 1, as text; None when
    there is none, when the numerators are not counts (whole and not negative), or when the
    data are DfE's published statistics (their counts are public, and DfE has suppressed its
    own small ones)."""
    if panel.data.kind == "official":
        return None
    cells = panel.outcome_cells(outcome)
    counts = cells["numerator"].dropna().to_numpy(float)
    if not counts.size or not ((counts >= 0) & (counts == counts.round())).all():
        return None
    treated = cells[(cells["role"] == "treated") | cells["unit"].isin(donors)]
    small = treated[(treated["numerator"] > 0) & (treated["numerator"] < min_count)]
    if small.empty:
        return None
    first = small.sort_values(["period", "unit"]).iloc[0]
    name = dict(zip(panel.units["unit"], panel.units["name"], strict=True)).get(first["unit"])
    return f"{name or first['unit']} in {panel.period_label(int(first['period']))}"


def comparison_units(panel: ValidatedPanel, outcome: str) -> frozenset[str]:
    """The units of an outcome's cells that are not treated (a synthetic comparator's pool)."""
    cells = panel.outcome_cells(outcome)
    return frozenset(cells.loc[cells["role"] != "treated", "unit"].astype(str))


def _without_leave_one_out(result: EffectEstimates, log: DisclosureLog) -> EffectEstimates:
    """A synthetic control's result without its leave-one-donor-out estimates (logged)."""
    facts = result.facts
    if not isinstance(facts, SyntheticControlFacts):
        return result
    units = {
        unit: {k: v for k, v in values.items() if k != "leave_one_donor_out"}
        for unit, values in facts.units.items()
    }
    if units == facts.units:
        return result
    log.suppress("leave-one-donor-out estimates")
    return replace(result, facts=replace(facts, units=units))


def sole_donors(result: EffectEstimates) -> frozenset[str]:
    """The comparison units that are a synthetic comparator's only donor of positive weight
    (synthetic control's donor_weights per treated unit, SDID's unit_weights per cohort): the
    gaps beside the treated unit's shown rate give such a donor's rate back, period by period
    (found in review). Two or more weighted donors leave one equation per period in as many
    unknowns."""
    found: set[str] = set()

    def scan(node: object) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in ("donor_weights", "unit_weights") and isinstance(value, Mapping):
                    nested = [v for v in value.values() if isinstance(v, Mapping)]
                    for weights in nested or [value]:
                        positive = [str(u) for u, x in weights.items() if float(x) > 0]
                        if len(positive) == 1:
                            found.update(positive)
                else:
                    scan(value)
        elif isinstance(node, list | tuple):
            for item in node:
                scan(item)

    scan(result.diagnostics)
    return frozenset(found)


def hides_a_baseline(panel: ValidatedPanel, outcome: str, min_count: int) -> bool:
    """Whether the treated units' pre-start mean (an MDES's baseline) would give back a count
    the trends table suppresses: the table shows every other period's treated mean, so the
    mean of all of them returns the hidden one by subtraction (4 children, from a baseline of
    27.1875 per 10,000 beside three shown years). On unpublished data the table hides every
    treated period once one is hidden, and the baseline beside the estimates' differences
    would give them back, so any hidden period hides it. Read once per panel and outcome:
    the report asks for every analysis of the outcome."""
    return panel.derived(
        ("hides_a_baseline", outcome, min_count),
        lambda: _hides_a_baseline(panel, outcome, min_count),
    )


def _hides_a_baseline(panel: ValidatedPanel, outcome: str, min_count: int) -> bool:
    targeted = {c.id: c.outcome for c in panel.spec.contrasts}.get(outcome, outcome)
    cells = panel.outcome_cells(targeted)
    counts = cells["numerator"].dropna().to_numpy(float)
    if not counts.size or not ((counts >= 0) & (counts == counts.round())).all():
        return False
    treated = cells[cells["role"] == "treated"]
    before = treated[treated["treated"] == 0]
    small = []
    for part in (treated, before):  # the trends table's periods, and the baseline's own
        events = part.groupby("period")["numerator"].sum(min_count=1)
        small += events.index[(events > 0) & (events < min_count)].tolist()
    if panel.data.kind != "official" and small:  # the trends table hides every period
        return True
    return bool(set(small) & set(before["period"]))


def published(ev: Evaluation, log: DisclosureLog) -> Evaluation:
    """The evaluation with every analysis's result as `controlled_result` publishes it (and
    without its MDES's baseline where that gives a suppressed count back); on
    child-level records also the rows each analysis left out (counted in cluster-periods,
    which say as much about children as the records do). A synthetic control or SDID of an
    outcome whose treated units have a small count of children is not published: its gaps
    with the donors' weights and values would give that unit's count back
    (`small_treated_count`), nor are its placebo re-fits."""
    hide = hides_a_sequence(ev.panel, log)
    linked = _differenced_by_few(  # the triple differences' counts of people, across analyses
        [r.result.facts if r.result is not None else None for r in ev.runs], log
    )
    records = ev.panel.data.kind == "records"
    runs = []
    hidden: dict[tuple[str, str], str] = {}  # (analysis, outcome) → why not shown
    for i, r in enumerate(ev.runs):
        if r.result is None:
            runs.append(r)
            continue
        result = controlled_result(r.result, log, hide or i in linked)
        if records and result.dropped:
            result = replace(
                result,
                dropped=tuple(
                    replace(
                        d,
                        reason=f"{d.reason} (counted in cluster-periods)",
                        rows=None if d.rows is None else log.number(d.rows, "exclusions"),
                    )
                    for d in result.dropped
                ),
            )
        small = (
            small_treated_count(ev.panel, r.outcome, log.min_count, sole_donors(r.result))
            if r.analysis.estimator.value in ONE_UNIT_PATHS
            else None
        )
        if small is None:
            if r.analysis.estimator.value in ONE_UNIT_PATHS and small_treated_count(
                ev.panel, r.outcome, log.min_count, comparison_units(ev.panel, r.outcome)
            ):
                # a leave-one-donor-out refit may rest on one donor: beside the treated
                # unit's shown rate its estimate gives that donor's count back (found in
                # review: Rutland's 3 children from two donors)
                result = _without_leave_one_out(result, log)
            det = r.detectable
            if (
                det is not None
                and math.isfinite(det.baseline)
                and hides_a_baseline(ev.panel, r.outcome, log.min_count)
            ):
                log.suppress("detectable effects")
                det = replace(det, baseline=math.nan)
            runs.append(replace(r, result=result, detectable=det))
            continue
        log.suppress("analyses")
        note = (
            f"disclosure control: a treated unit's or sole donor's count of children is "
            f"below {log.min_count} ({small}), and this analysis's gaps with its donors' "
            "weights would give that count back"
        )
        # its exclusions are still counted
        runs.append(replace(r, status="suppressed", result=None, note=note, dropped=result.dropped))
        hidden[r.analysis.id, r.outcome] = note
    placebo = tuple(  # a placebo re-fit's gaps give the pre-start counts back as well
        replace(p, status="suppressed", result=None, note=hidden[p.analysis.id, p.outcome])
        if (p.analysis.id, p.outcome) in hidden
        else p
        for p in ev.placebo
    )
    return replace(ev, runs=tuple(runs), placebo=placebo)
