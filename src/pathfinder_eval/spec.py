"""Design files (designs/*.yaml) → a frozen, validated `DesignSpec`.

Every error names the file, the key path, the bad value and the fix. LA references (names,
three-digit codes or GSS codes) are resolved to DfE's three-digit `la_code` here, so later stages
only ever see codes.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pathfinder_eval.data.la_lookup import region_members, resolve_la, unknown_la_fix
from pathfinder_eval.errors import DesignError
from pathfinder_eval.settings import OPTIONS, Inference, validate_settings
from pathfinder_eval.timeaxis import PartialRule, TimeAxis


class PilotKind(StrEnum):
    FAMILY_HELP = "family_help"
    FAMILY_NETWORK = "family_network"
    RCC = "rcc"
    TRIAL = "trial"
    CUSTOM = "custom"


class UnitLevel(StrEnum):
    LOCAL_AUTHORITY = "local_authority"
    REGION = "region"
    CLUSTER = "cluster"


class Estimator(StrEnum):
    """Estimators a design may name (each has an options model in settings.OPTIONS)."""

    DESCRIPTIVE = "descriptive"
    TWFE = "twfe"
    TWFE_POISSON = "twfe_poisson"
    EVENT_STUDY = "event_study"
    STEPPED_WEDGE = "stepped_wedge"
    STEPPED_WEDGE_GEE = "stepped_wedge_gee"
    STEPPED_WEDGE_GLMM = "stepped_wedge_glmm"
    CALLAWAY_SANTANNA = "callaway_santanna"
    SUN_ABRAHAM = "sun_abraham"
    IMPUTATION = "imputation"
    ETWFE = "etwfe"
    TWO_STAGE = "two_stage"
    STACKED = "stacked"
    DID_MULTIPLEGT_DYN = "did_multiplegt_dyn"
    CONTINUOUS_DID = "continuous_did"
    TRIPLE_DIFFERENCE = "triple_difference"
    BACON = "bacon"
    SYNTHETIC_CONTROL = "synthetic_control"
    SYNTHETIC_DID = "synthetic_did"


def _unit_text(value: object) -> object:
    """A unit id written as a YAML number (838, a cluster 7) read as its text, as the data's
    readers read a column of such numbers: unquoted ids were refused as 'Input should be a
    valid string'. (A spelling YAML would change, such as 007, is refused as it is read.)"""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


UnitId = Annotated[str, BeforeValidator(_unit_text)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class TimeSpec(_Frozen):
    axis: TimeAxis = TimeAxis.REPORTING_YEAR
    first: int | None = None
    last: int | None = None
    partial_period_rule: PartialRule = PartialRule.ANY_EXPOSURE


class Wave(_Frozen):
    """Units starting together. `transition_periods`: the first k periods from the start are an
    implementation period excluded by design (their cells are dropped and counted; exposure
    time still counts from the start)."""

    wave: str
    start: dt.date | int
    units: Annotated[tuple[UnitId, ...], Field(min_length=1)]
    transition_periods: int = Field(default=0, ge=0)


class Group(_Frozen):
    """A treated unit made of several LAs (an RCC region): explicit members or a whole region."""

    members: tuple[UnitId, ...] = ()
    region: str | None = None


Closeness = Literal["Extremely close", "Very close", "Close", "Somewhat close", "Not close"]


class NeighbourSet(_Frozen):
    """One treated unit's statistical neighbours: (la_code, closeness), nearest first."""

    unit: str
    neighbours: tuple[tuple[str, str], ...]


class Comparison(_Frozen):
    """The comparison pool. `statistical_neighbours`: each treated LA's `neighbours` nearest
    LAs in DfE's statistical neighbour model (those whose closeness is in `closeness`; all
    when empty), their union the pool; the model is read from the data folder or from
    `neighbour_file` (relative to the design). `neighbour_sets` and `neighbour_source`
    (file name, sha256) are filled in when the data are loaded, never in a design file."""

    pool: Literal["never_treated", "not_yet_treated", "list", "statistical_neighbours"] = (
        "never_treated"
    )
    units: tuple[UnitId, ...] = ()
    exclude: tuple[UnitId, ...] = ()
    exclude_reason: str = "excluded from the comparison pool by the design"
    min_units: int = Field(default=5, ge=1)
    neighbours: int = Field(default=10, ge=1, le=10)
    closeness: tuple[Closeness, ...] = ()
    neighbour_file: str | None = None
    neighbour_sets: tuple[NeighbourSet, ...] = ()
    neighbour_source: tuple[str, str] | None = None


class Outcome(_Frozen):
    """An indicator from the catalogue, or a data column (tidy data). With `numerator` and
    `denominator` the value is recomputed from the counts (scaled) and `column` names it; with
    `denominator` alone the value is `column`'s and the denominator is each unit's size (the
    population the rate is of), which the pooled variance scales the noise by and `weighted`
    analyses weight by, while count models still need the numerator.
    `plausible` ([low, high]) and `share` (numerator ≤ denominator; default: percent-scale
    column outcomes) override what values are possible (data/plausibility.py).
    `expected_effect`: the relative change the evaluation expects or would care about
    (−0.10: 10% lower), which the report sets beside what each analysis could detect."""

    indicator: str | None = None
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    name: str | None = None
    scale: Literal["percent", "per_10000", "ratio", "level"] = "level"
    polarity: Literal["lower_is_better", "higher_is_better", "neutral"] = "neutral"
    required: bool = True
    plausible: tuple[float, float] | None = None
    share: bool | None = None
    expected_effect: float | None = Field(default=None, gt=-1.0)

    @field_validator("plausible")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError("plausible must be [low, high] with low < high, e.g. [0, 100]")
        return value

    @model_validator(mode="after")
    def _counts_complete(self) -> Self:
        if self.numerator and not self.denominator:  # it was read and then ignored
            raise ValueError(
                f"numerator {self.numerator!r} needs a denominator: a rate is recomputed from "
                "both (or give the value's column alone)"
            )
        if self.denominator and not self.numerator and not self.column:
            raise ValueError(
                f"denominator {self.denominator!r} without a numerator needs the value's "
                "column: the denominator then gives each unit's size"
            )
        return self

    @property
    def id(self) -> str:
        return self.indicator or self.column or ""


class Contrast(_Frozen):
    """A triple difference's outcome: in each unit and period, `outcome` minus `minus`, two
    outcomes of the design on the same scale where `minus` is a group the reform does not
    target within the same unit (another age band or need category). Any DiD estimator run on
    the contrast estimates the targeted group's DiD minus the untargeted group's: shocks common
    to both groups of an LA cancel, and parallel trends is needed only for the gap between them
    (the triple-difference estimand of Ortiz-Villavicencio & Sant'Anna 2025 without
    covariates). `id` names it in `analyses[].outcomes`; `name` labels it in the report;
    `expected_effect` is relative to the targeted group's level (−0.10: 10% lower), which is
    also what the report's detectable effect is set against."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    outcome: str
    minus: str
    name: str | None = None
    expected_effect: float | None = None


class Analysis(_Frozen):
    """One analysis the design asks for. `primary` marks the pre-specified primary analysis:
    the report's headline shows it for each outcome it estimates (else the first analysis in
    design order that produced an estimate)."""

    id: str
    estimator: Estimator
    outcomes: tuple[str, ...] = ("all",)
    level: float = Field(default=0.95, gt=0.5, lt=1.0)
    inference: Inference = Inference()
    options: dict[str, Any] = Field(default_factory=dict)
    primary: bool = False

    @field_validator("outcomes")
    @classmethod
    def _some_outcome(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(
                "an analysis with no outcomes would run nothing: list outcome ids, or omit "
                "'outcomes' to analyse every outcome"
            )
        return value

    def covers(self, outcome_id: str) -> bool:
        """Whether the analysis runs on the outcome (its `outcomes` list it, or say all)."""
        return "all" in self.outcomes or outcome_id in self.outcomes


UNIT_TABLE_COLUMNS = (
    "unit",
    "name",
    "region",
    "role",
    "wave",
    "start",
    "cohort",
    "transition",
    "exposure_fraction",
    "dose",
)


class TidyColumns(_Frozen):
    """Column names of tidy data and individual records. For records (data.source: records),
    `covariates` are individual-level numeric adjustment variables and `individual` identifies
    people measured in several periods (a closed cohort); either keeps the records for the
    stepped-wedge model's individual-level path. `region`: each unit's region (for the
    regional dependence of the comparison-pooled variance; LA-level data without it take the
    region from the LA lookup). `dose`: each treated unit's dose of the reform (funding per
    child, team coverage), one value per unit, for continuous_did. `eligible` (records): 1 for
    the people the reform targets (an age band, a need category), 0 for the others, constant
    for a person; with `individual` it keeps the records for triple_difference."""

    unit: str = "unit"
    period: str = "period"
    region: str | None = None
    treatment: str | None = None
    dose: str | None = None
    individual: str | None = None
    eligible: str | None = None
    covariates: tuple[str, ...] = ()
    unit_columns: tuple[str, ...] = ()
    """Further columns of tidy data constant within each unit (e.g. state, LA type), carried
    to the unit table under their own names, so `inference.cluster` and did_multiplegt_dyn's
    `by` and `trends_nonparam` can name them."""

    @field_validator("unit_columns")
    @classmethod
    def _not_reserved(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        taken = [c for c in value if c in UNIT_TABLE_COLUMNS]
        if taken:
            raise ValueError(
                f"{taken[0]!r} is already a unit-table column; name another data column "
                f"(taken: {', '.join(UNIT_TABLE_COLUMNS)})"
            )
        if len(set(value)) < len(value):
            raise ValueError("a column is listed twice")
        return value


class TrialSimulation(_Frozen):
    """Settings of the simulated stepped-wedge trial (data.source: simulated_trial)."""

    periods: int = Field(ge=2)
    effect: float = Field(default=0.0, allow_inf_nan=False)
    """The true effect (outcome SD units): finite (.nan gave power nan and invalid JSON, .inf
    power 1)."""
    icc: float = Field(default=0.05, ge=0.0, lt=1.0, allow_inf_nan=False)
    cell_size: int = Field(default=30, ge=1)
    effect_sd: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    """SD of the clusters' own intervention effects around `effect` (outcome SD units): a
    random slope on the intervention indicator, swCRTdesign's eta."""
    effect_corr: float = Field(default=0.0, ge=-1.0, le=1.0, allow_inf_nan=False)
    """Correlation of a cluster's intervention effect with its intercept (swCRTdesign's rho)."""

    @model_validator(mode="after")
    def _corr_needs_sd(self) -> TrialSimulation:
        if self.effect_corr != 0.0 and self.effect_sd == 0.0:
            raise ValueError("effect_corr needs effect_sd > 0 (there is no effect to correlate)")
        return self


class DataSpec(_Frozen):
    source: Literal["synthetic", "simulated_trial", "official", "tidy", "records"] = "synthetic"
    path: str | None = None
    columns: TidyColumns = TidyColumns()
    injected_effect: dict[str, float] = Field(default_factory=dict)
    trial: TrialSimulation | None = None

    @model_validator(mode="after")
    def _records_only(self) -> DataSpec:
        c = self.columns
        if (c.covariates or c.individual or c.eligible) and self.source != "records":
            raise ValueError(
                "columns.covariates, columns.individual and columns.eligible need individual "
                "records: set data.source: records"
            )
        if self.columns.unit_columns and self.source != "tidy":
            raise ValueError("columns.unit_columns are read from tidy data: set data.source: tidy")
        return self


class Disclosure(_Frozen):
    """Counts of children below `min_count` are suppressed, the others rounded to the nearest
    `round_to`. Whole numbers only: YAML's `yes` or "10" is not a threshold (`yes` read as 1
    switched suppression off), and a rounding unit above twice the threshold would show a
    count that is not suppressed as 0, which reads as a true zero."""

    min_count: StrictInt = Field(default=10, ge=1)
    round_to: StrictInt = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _no_shown_zero(self) -> Disclosure:
        if self.round_to > 2 * self.min_count:
            raise ValueError(
                f"round_to {self.round_to} would show a count of {self.min_count} (the smallest "
                f"not suppressed) as 0: use a round_to of at most {2 * self.min_count}, or raise "
                "min_count"
            )
        return self


# report.template's default: the packaged templates (another value is a template folder,
# relative to the design file, overriding them as `run --templates DIR` does)
STANDARD_TEMPLATES = "standard"


class ReportSpec(_Frozen):
    template: str = STANDARD_TEMPLATES
    date: dt.date | None = None
    disclosure: Disclosure = Disclosure()


class DesignSpec(_Frozen):
    """A pilot's design: units, rollout, comparison pool, outcomes, analyses and report options."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_\-]+$")]
    title: str
    pilot: PilotKind
    programme: str = ""
    description: str = ""
    evaluator: str = ""
    funder: str = ""
    sources: tuple[str, ...] = ()
    unit_level: UnitLevel = UnitLevel.LOCAL_AUTHORITY
    time: TimeSpec = TimeSpec()
    rollout: Annotated[tuple[Wave, ...], Field(min_length=1)]
    groups: dict[str, Group] = Field(default_factory=dict)
    comparison: Comparison = Comparison()
    outcomes: Annotated[tuple[Outcome, ...], Field(min_length=1)]
    contrasts: tuple[Contrast, ...] = ()
    analyses: Annotated[tuple[Analysis, ...], Field(min_length=1)]
    data: DataSpec = DataSpec()
    report: ReportSpec = ReportSpec()
    seed: Annotated[int, Field(ge=0)] = 20230701
    path: str = ""
    sha256: str = ""

    @field_validator("outcomes")
    @classmethod
    def _unique_outcomes(cls, value: tuple[Outcome, ...]) -> tuple[Outcome, ...]:
        ids = [o.id for o in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(
                f"each outcome may be listed once; repeated: {', '.join(dupes)} (remove the "
                "repeat, or give tidy-data outcomes different columns)"
            )
        return value

    @field_validator("analyses")
    @classmethod
    def _counts_for_count_models(
        cls, value: tuple[Analysis, ...], info: ValidationInfo
    ) -> tuple[Analysis, ...]:
        """A stepped-wedge count model reads its events as value × denominator: for a rate
        per 10,000 or a percentage given without its count that is the count times the scale,
        and the variance would be that many times too small."""
        for o in info.data.get("outcomes", ()):
            if not o.denominator or o.numerator or o.scale not in ("percent", "per_10000"):
                continue
            for a in value:
                counts = a.estimator in (Estimator.STEPPED_WEDGE_GEE, Estimator.STEPPED_WEDGE_GLMM)
                if not (counts and a.covers(o.id)):
                    continue
                fields = OPTIONS[a.estimator.value].model_fields
                family = a.options.get("family", fields["family"].default)
                if family != "gaussian":
                    raise ValueError(
                        f"analysis {a.id} ({a.estimator.value}, family {family}) counts events "
                        f"as value × denominator, and outcome {o.id} is a {o.scale} rate given "
                        "without its count: give the count as numerator, or use family: "
                        "gaussian"
                    )
        return value

    @field_validator("analyses")
    @classmethod
    def _unique_ids(cls, value: tuple[Analysis, ...]) -> tuple[Analysis, ...]:
        ids = [a.id for a in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"analysis ids must be unique; repeated: {', '.join(dupes)}")
        primary = [a.id for a in value if a.primary]
        if len(primary) > 1:
            raise ValueError(
                f"only one analysis can be primary; marked: {', '.join(primary)} (set "
                "primary: true on the pre-specified one)"
            )
        return value

    def start_of(self) -> dict[str, dt.date | int]:
        """Treated unit → rollout start (dates, or period numbers on a PERIOD axis)."""
        return {unit: wave.start for wave in self.rollout for unit in wave.units}

    def wave_of(self) -> dict[str, str]:
        return {unit: wave.wave for wave in self.rollout for unit in wave.units}

    def expected_effect(self, outcome_id: str) -> float | None:
        """The expected relative effect the design states for an outcome or contrast."""
        for o in (*self.outcomes, *self.contrasts):
            if o.id == outcome_id:
                return o.expected_effect
        return None

    @property
    def primary_analysis(self) -> Analysis:
        """The analysis marked `primary: true`, else the first in the design's order: the
        report's headline, the plan's registered primary and the default of power."""
        return next((a for a in self.analyses if a.primary), self.analyses[0])

    def analyses_for(self, outcome_id: str) -> list[Analysis]:
        return [a for a in self.analyses if a.covers(outcome_id)]


TOP_LEVEL_HELP = (
    "see designs/family_help.yaml for a complete example and README 'Design files' for every key"
)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing what PyYAML lets through silently: a key given twice in
    one mapping (PyYAML keeps the last) and an impossible date (a bare ValueError)."""


class _Refused(yaml.constructor.ConstructorError):
    """A value the strict loader refuses, with the fix to print."""

    def __init__(self, problem: str, mark: yaml.Mark, fix: str) -> None:
        super().__init__(None, None, problem, mark)
        self.fix = fix


def _unique_keys(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`, merged as YAML says
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise _Refused(
                f"key {key!r} is given twice (first on line {seen[key] + 1})",
                key_node.start_mark,
                "give each key once",
            )
        seen.setdefault(key, key_node.start_mark.line)
    return loader.construct_mapping(node, deep=True)


def _checked_date(loader: _StrictLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        raise _Refused(
            f"{node.value!r} is not a date ({exc})", node.start_mark, "give a real date, YYYY-MM-DD"
        ) from None


def _plain_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    """An integer written as it reads: YAML 1.1 reads 010 as 8 (octal) and 0x1F as 31, so a
    unit id 010 or a start 010 would silently be another number; such spellings are refused."""
    value = loader.construct_yaml_int(node)
    if str(value) != node.value.replace("_", "").lstrip("+"):
        raise _Refused(
            f"{node.value} is read by YAML as the number {value} (a leading zero or a 0x/0o/0b "
            "prefix changes a number's base)",
            node.start_mark,
            f"write the number as {value}, or quote it ('{node.value}') for an identifier "
            "(then the data must hold the same text: a CSV's numbers lose leading zeros)",
        )
    return value


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _plain_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _checked_date)


def load_design(path: str | Path) -> DesignSpec:
    """Read and validate a design file; LA names are resolved to codes."""
    file = str(path)
    try:
        raw_bytes = Path(path).read_bytes()
    except FileNotFoundError:
        raise DesignError(
            "design file not found", file=file, fix="check the path (designs/*.yaml)"
        ) from None
    except OSError as exc:
        raise DesignError(
            f"cannot read design file ({exc.strerror})",
            file=file,
            fix="pass a readable YAML file (designs/*.yaml)",
        ) from None
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DesignError(
            "design file is not UTF-8 text", file=file, fix="save it as UTF-8"
        ) from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise DesignError(
            f"malformed YAML: {problem}",
            file=file,
            where=where,
            fix=exc.fix
            if isinstance(exc, _Refused)
            else "correct the YAML syntax (indentation, colons, quotes) at that place",
        ) from None
    if not isinstance(raw, dict):
        raise DesignError(
            "a design file must be a YAML mapping of keys (name, title, pilot, rollout, ...)",
            file=file,
            fix=TOP_LEVEL_HELP,
        )
    raw = {**raw, "path": file, "sha256": hashlib.sha256(raw_bytes).hexdigest()}
    try:
        spec = DesignSpec.model_validate(raw)
    except ValidationError as exc:
        raise _design_error(file, exc) from None
    for i, analysis in enumerate(spec.analyses):
        validate_settings(
            OPTIONS[analysis.estimator.value],
            analysis.options,
            analysis.inference,
            prefix=f"analyses[{i}].",
            file=file,
        )
        _names_unit_columns(spec, analysis, f"analyses[{i}].", file)
    return _resolve_units(spec, file)


def _names_unit_columns(spec: DesignSpec, analysis: Analysis, prefix: str, file: str) -> None:
    """inference.cluster, and the options that name a unit-table column (dCDH's by and
    trends_nonparam), name one the panel will have: a typo is a design error, not an
    analysis reported as not estimable."""
    known = ("unit", "", *UNIT_TABLE_COLUMNS, *spec.data.columns.unit_columns)
    named = {"inference.cluster": analysis.inference.cluster} | {
        f"options.{k}": analysis.options.get(k) for k in ("by", "trends_nonparam")
    }
    for key, column in named.items():
        if isinstance(column, str) and column not in known:
            raise DesignError(
                f"{column!r} is not a column of the unit table",
                file=file,
                where=f"{prefix}{key}",
                fix="use unit or region, or name a column of the data in "
                "data.columns.unit_columns (tidy data)",
            )


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union", "union[", "lax-or")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = DesignSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        inner = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type)]
        candidates = [ann, *inner]
        nxt = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if nxt is None:
            return []
        model = nxt
    return [k for k in model.model_fields if k not in ("path", "sha256")]


def _design_error(file: str, exc: ValidationError) -> DesignError:
    # An unknown key usually explains a "missing" one beside it (a typo): report it first.
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    loc, kind = tuple(err["loc"]), err["type"]
    where = _key_path(loc)
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
        return DesignError(
            f"unknown key '{loc[-1]}'", file=file, where=where, fix=f"remove or rename it ({hint})"
        )
    if kind == "missing":
        return DesignError(
            "required key is missing",
            file=file,
            where=where,
            fix=f"add '{loc[-1]}' ({TOP_LEVEL_HELP})",
        )
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    expected = err["msg"]
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        expected = f"expected one of {ctx['expected']}"
    if kind == "value_error" and "error" in ctx:  # our own validators' messages
        expected = str(ctx["error"])
    return DesignError(
        f"bad value {shown}: {expected}",
        file=file,
        where=where,
        fix="correct the value as described",
    )


def _check_unit_ddd(spec: DesignSpec, analysis: Analysis, where: str, file: str) -> None:
    """triple_difference compares the targeted and untargeted people of each LA, so it needs
    records that follow people (individual) and say whom the reform targets (eligible); its
    covariates are read from the records, so they must be kept (data.columns.covariates)."""
    cols = spec.data.columns
    if spec.unit_level is UnitLevel.REGION:
        raise DesignError(
            "triple_difference compares people within the LAs the records name, and this "
            "design's units are groups of LAs",
            file=file,
            where=f"{where}.estimator",
            fix="use unit_level: local_authority or cluster (each LA a cluster), or summarise "
            "the records by group and use contrasts",
        )
    missing = [k for k in ("individual", "eligible") if getattr(cols, k) is None]
    if spec.data.source != "records" or missing:
        raise DesignError(
            "triple_difference needs individual records that follow each person over periods "
            "and say whom the reform targets"
            + (f" (data.columns.{' and '.join(missing)} not given)" if missing else ""),
            file=file,
            where=f"{where}.estimator",
            fix="set data.source: records with data.columns.individual (the person's id) and "
            "data.columns.eligible (1 targeted, 0 not); for LA-level data with the targeted "
            "and untargeted groups as two outcomes, list a contrast (contrasts: outcome, minus) "
            "and run any DiD estimator on it",
        )
    kept = set(cols.covariates)
    covariates = analysis.options.get("covariates", ())
    for j, c in enumerate(covariates if isinstance(covariates, list | tuple) else ()):
        if c not in kept:
            raise DesignError(
                f"covariate {c!r} is not one of the records' covariates",
                file=file,
                where=f"{where}.options.covariates[{j}]",
                fix="list it in data.columns.covariates too (the records keep only those)"
                + (f"; kept: {', '.join(sorted(kept))}" if kept else ""),
            )


def _resolve_one(ref: str, file: str, where: str, level: UnitLevel, former_ok: bool = False) -> str:
    """An LA reference's three-digit code; a former LA only where `former_ok` (an exclusion:
    tidy data may hold abolished LAs, and leaving them out must be possible)."""
    if level is not UnitLevel.LOCAL_AUTHORITY:
        return str(ref)
    la = resolve_la(ref) or (resolve_la(ref, current_only=False) if former_ok else None)
    if la is None:
        former = resolve_la(ref, current_only=False) is not None
        what = (
            f"{ref!r} is a former local authority" if former else f"unknown local authority {ref!r}"
        )
        raise DesignError(what, file=file, where=where, fix=unknown_la_fix(ref))
    return la.la_code


def _resolve_units(spec: DesignSpec, file: str) -> DesignSpec:
    level = spec.unit_level
    groups: dict[str, Group] = {}
    for name, group in spec.groups.items():
        if group.region is not None:
            members = region_members(group.region)
            if not members:
                raise DesignError(
                    f"unknown region {group.region!r}",
                    file=file,
                    where=f"groups.{name}.region",
                    fix="use an English region name such as 'South East'",
                )
        else:
            members = [
                _resolve_one(m, file, f"groups.{name}.members[{i}]", UnitLevel.LOCAL_AUTHORITY)
                for i, m in enumerate(group.members)
            ]
        if not members:
            raise DesignError(
                "a group needs members or a region",
                file=file,
                where=f"groups.{name}",
                fix="list its LAs under 'members'",
            )
        groups[name] = Group(members=tuple(members), region=group.region)
    unit_level_for_refs = UnitLevel.CLUSTER if level is UnitLevel.REGION else level
    # in a region design the treated units are groups but the comparison units are LAs
    comparison_level = UnitLevel.LOCAL_AUTHORITY if level is UnitLevel.REGION else level

    waves, seen, names = [], {}, {}
    for w, wave in enumerate(spec.rollout):
        where_w = f"rollout[{w}]"
        if wave.wave in names:  # the report's tables and charts are keyed by the wave's name
            raise DesignError(
                f"wave name {wave.wave!r} is also {names[wave.wave]}'s",
                file=file,
                where=f"{where_w}.wave",
                fix="give each wave its own name (Wave 1, Wave 2, ...)",
            )
        names[wave.wave] = where_w
        if spec.time.axis is TimeAxis.PERIOD and not isinstance(wave.start, int):
            raise DesignError(
                f"bad start {wave.start!r}",
                file=file,
                where=f"{where_w}.start",
                fix="a 'period' time axis takes integer period numbers as starts",
            )
        if spec.time.axis is not TimeAxis.PERIOD and not isinstance(wave.start, dt.date):
            raise DesignError(
                f"bad start {wave.start!r}",
                file=file,
                where=f"{where_w}.start",
                fix=f"give a date like 2023-07-01 for a {spec.time.axis} axis",
            )
        codes = []
        for i, ref in enumerate(wave.units):
            where = f"{where_w}.units[{i}]"
            if level is UnitLevel.REGION and ref not in groups:
                raise DesignError(
                    f"unknown group {ref!r}",
                    file=file,
                    where=where,
                    fix=f"define it under 'groups' (known: {', '.join(groups)})",
                )
            code = _resolve_one(ref, file, where, unit_level_for_refs)
            if code in seen:
                raise DesignError(
                    f"unit {ref!r} is listed twice in the rollout",
                    file=file,
                    where=where,
                    fix=f"keep it only in {seen[code]}",
                )
            seen[code] = where
            codes.append(code)
        waves.append(wave.model_copy(update={"units": tuple(codes)}))

    comp = spec.comparison
    comp = comp.model_copy(
        update={
            "units": tuple(
                _resolve_one(u, file, f"comparison.units[{i}]", comparison_level)
                for i, u in enumerate(comp.units)
            ),
            "exclude": tuple(
                _resolve_one(u, file, f"comparison.exclude[{i}]", comparison_level, True)
                for i, u in enumerate(comp.exclude)
            ),
        }
    )
    if comp.neighbour_sets or comp.neighbour_source:
        raise DesignError(
            "comparison.neighbour_sets and neighbour_source are filled from the statistical "
            "neighbour file, not written in a design",
            file=file,
            where="comparison",
            fix="remove them; set pool: statistical_neighbours, neighbours and closeness",
        )
    if comp.pool == "statistical_neighbours" and comp.units:
        raise DesignError(
            "pool 'statistical_neighbours' builds the pool from DfE's statistical neighbour "
            "model; comparison.units cannot be given too",
            file=file,
            where="comparison.units",
            fix="remove comparison.units, or use pool: list with your own units",
        )
    if comp.pool == "list" and not comp.units:
        raise DesignError(
            "pool 'list' needs comparison units",
            file=file,
            where="comparison.units",
            fix="list the comparison LAs",
        )
    for i, outcome in enumerate(spec.outcomes):
        if (outcome.indicator is None) == (outcome.column is None):
            raise DesignError(
                "an outcome needs exactly one of 'indicator' or 'column'",
                file=file,
                where=f"outcomes[{i}]",
                fix="write '- indicator: <id>' (see `pathfinder-eval indicators`)",
            )
    ids = {o.id for o in spec.outcomes}
    for i, c in enumerate(spec.contrasts):
        for key in ("outcome", "minus"):
            if getattr(c, key) not in ids:
                raise DesignError(
                    f"contrast {c.id!r} names {getattr(c, key)!r}, which is not an outcome of "
                    "the design",
                    file=file,
                    where=f"contrasts[{i}].{key}",
                    fix=f"list it under outcomes, or use one of: {', '.join(sorted(ids))}",
                )
        if c.outcome == c.minus:
            raise DesignError(
                f"contrast {c.id!r} subtracts {c.outcome!r} from itself",
                file=file,
                where=f"contrasts[{i}].minus",
                fix="name the untargeted group's outcome",
            )
        if c.id in ids:
            raise DesignError(
                f"contrast id {c.id!r} is already an outcome's id",
                file=file,
                where=f"contrasts[{i}].id",
                fix="give the contrast its own id",
            )
        ids.add(c.id)
    for a, analysis in enumerate(spec.analyses):
        if analysis.estimator is Estimator.TRIPLE_DIFFERENCE:
            _check_unit_ddd(spec, analysis, f"analyses[{a}]", file)
        for j, oid in enumerate(analysis.outcomes):
            if oid != "all" and oid not in ids:
                raise DesignError(
                    f"analysis names unknown outcome {oid!r}",
                    file=file,
                    where=f"analyses[{a}].outcomes[{j}]",
                    fix=f"use one of: all, {', '.join(sorted(ids))}",
                )
    outcome_ids = sorted(o.id for o in spec.outcomes)
    for oid, effect in spec.data.injected_effect.items():
        if oid not in outcome_ids:
            close = difflib.get_close_matches(oid, outcome_ids, n=1)
            raise DesignError(
                f"injected effect for {oid!r}, which is not an outcome"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                file=file,
                where=f"data.injected_effect.{oid}",
                fix=f"use one of: {', '.join(outcome_ids)}",
            )
        if not effect > -1:
            raise DesignError(
                f"injected effect {effect:g} for {oid!r} is a fall of 100% or more",
                file=file,
                where=f"data.injected_effect.{oid}",
                fix="give a relative change above -1 (e.g. -0.10 for a 10% fall)",
            )
    t = spec.time
    if t.first is not None and t.last is not None and t.first > t.last:
        raise DesignError(
            f"time window first {t.first} is after last {t.last}",
            file=file,
            where="time.first",
            fix="swap them",
        )
    report = spec.report
    if report.template != STANDARD_TEMPLATES:
        folder = (Path(file).parent if file else Path.cwd()) / report.template
        if not folder.is_dir():
            raise DesignError(
                f"report.template {report.template!r} is not a folder of templates",
                file=file,
                where="report.template",
                fix=f"give '{STANDARD_TEMPLATES}' (the packaged templates) or a folder of "
                "templates relative to the design file, as `run --templates DIR` takes",
            )
        report = report.model_copy(update={"template": str(folder.resolve())})
    return spec.model_copy(
        update={"groups": groups, "rollout": tuple(waves), "comparison": comp, "report": report}
    )
