"""The power functions' inputs (review of pe.power, pe.mdes, pe.clusters_needed and
`pathfinder-eval power`): every argument is used or refused, the CLI applies the API's design
checks, extreme or non-finite values are refused by name, and tiny levels keep their digits.

Numbers are checked against an oracle written here from the papers, not from
power/analytic.py: Hooper et al. (2016, Stat. Med. 35:4718–4728) nested exchangeable model
(cell-mean covariance τ²J + (γ² + σ²/m)I within a cluster, categorical periods plus the
effect, GLS) and Hussey & Hughes (2007, eq. 8) closed form, which the same model takes with
σ²_cell = γ² + σ²/m for a complete design."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

import pathfinder_eval as pe
from cli_helpers import check_error
from pathfinder_eval.cli import main
from pathfinder_eval.errors import DesignError
from pathfinder_eval.power.design import design_power
from pathfinder_eval.spec import TrialSimulation, load_design

EXAMPLE = Path(__file__).resolve().parents[1] / "designs/examples/stepped_wedge_trial.yaml"
# oracle and code solve the same small systems in a different order: agreement to 1e-10
ORACLE_REL = 1e-10
TOO_EXTREME = "the variances are too extreme to compute the effect's variance"
NOT_SEPARATED = "the design does not separate the intervention effect from the period effects"
COMBINATIONS = (
    "give the cluster-period variance with cac when you give icc, or gamma2 with tau2 and sigma2"
)


def standard_wedge(per_sequence: list[int]) -> np.ndarray:
    """Sequence s (0-based) starts in period s + 2 of S + 1 periods."""
    periods = len(per_sequence) + 1
    rows = [[float(j > s) for j in range(periods)] for s, n in enumerate(per_sequence)]
    return np.repeat(np.array(rows), per_sequence, axis=0)


def oracle_variance(design: np.ndarray, tau2: float, gamma2: float, sigma2: float, m: float):
    """Var(θ̂) by GLS: Σ_i X_i' V⁻¹ X_i, X_i = [period dummies, x_i], V = τ²J + (γ² + σ²/m)I."""
    periods = design.shape[1]
    v = tau2 * np.ones((periods, periods)) + (gamma2 + sigma2 / m) * np.eye(periods)
    v_inv = np.linalg.inv(v)
    info = sum(
        np.column_stack([np.eye(periods), row]).T @ v_inv @ np.column_stack([np.eye(periods), row])
        for row in design
    )
    return np.linalg.inv(info)[-1, -1]


def hussey_hughes_eq8(design: np.ndarray, tau2: float, sigma2_cell: float) -> float:
    """Hussey & Hughes (2007) eq. 8 for a complete design."""
    i, t = design.shape
    u = design.sum()
    w = (design.sum(axis=0) ** 2).sum()
    v = (design.sum(axis=1) ** 2).sum()
    num = i * sigma2_cell * (sigma2_cell + t * tau2)
    return num / ((i * u - w) * sigma2_cell + (u**2 + i * t * u - t * w - i * v) * tau2)


def oracle_power(effect: float, variance: float, alpha: float) -> float:
    """Φ(|θ|/se − z) + Φ(−|θ|/se − z), z = z_{1−α/2} from the upper tail."""
    z = stats.norm.isf(alpha / 2)
    shift = abs(effect) / np.sqrt(variance)
    return stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)


def trial_design(tmp_path: Path, starts: tuple[int, ...] = (2, 3, 4, 5), **trial: str) -> str:
    """The example trial design with other starts for its four sequences and data.trial
    values replaced (YAML text)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for sequence, start in enumerate(starts, 1):
        old = f"{{wave: Sequence {sequence}, start: {sequence + 1},"
        text = text.replace(old, f"{{wave: Sequence {sequence}, start: {start},")
    for key, value in trial.items():
        head, _, rest = text.partition("trial: {")
        settings = dict(kv.split(": ") for kv in rest.split("}")[0].split(", "))
        settings[key] = value
        body = ", ".join(f"{k}: {v}" for k, v in settings.items())
        text = head + "trial: {" + body + "}" + rest.split("}", 1)[1]
    path = tmp_path / "trial.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# 1. every variance argument is used or refused


def test_gamma2_with_tau2_and_sigma2_matches_the_nested_exchangeable_oracle():
    """gamma2 0.2 with tau2 0.05, sigma2 0.95: power 0.2052 (ignored with icc, it was 0.7918)."""
    design = standard_wedge([3, 3, 3])
    var = oracle_variance(design, 0.05, 0.2, 0.95, 30)
    assert var == pytest.approx(hussey_hughes_eq8(design, 0.05, 0.2 + 0.95 / 30), rel=1e-12)
    got = pe.power([3, 3, 3], 0.3, cell_size=30, tau2=0.05, sigma2=0.95, gamma2=0.2)
    assert got == pytest.approx(oracle_power(0.3, var, 0.05), rel=ORACLE_REL)
    assert got == pytest.approx(0.2051536086, abs=5e-11)
    m = pe.mdes([3, 3, 3], cell_size=30, tau2=0.05, sigma2=0.95, gamma2=0.2)
    assert oracle_power(m, var, 0.05) == pytest.approx(0.8, abs=1e-10)


def test_icc_with_cac_is_the_nested_exchangeable_model_it_stands_for():
    """icc 0.05, cac 0.2: τ² = 0.01, γ² = 0.04, σ² = 0.95 (total variance 1)."""
    design = standard_wedge([3, 3, 3])
    var = oracle_variance(design, 0.01, 0.04, 0.95, 30)
    got = pe.power([3, 3, 3], 0.3, cell_size=30, icc=0.05, cac=0.2)
    assert got == pytest.approx(oracle_power(0.3, var, 0.05), rel=ORACLE_REL)
    assert got < pe.power([3, 3, 3], 0.3, cell_size=30, icc=0.05)


@pytest.mark.parametrize("function", ["power", "mdes", "clusters_needed"])
@pytest.mark.parametrize(
    ("variances", "where", "what"),
    [
        (
            {"icc": 0.05, "gamma2": 0.2},
            "argument gamma2",
            "gamma2 0.2 is not used with icc (icc and cac set the cluster-period variance)",
        ),
        (
            {"icc": 0.05, "gamma2": 0.0},
            "argument gamma2",
            "gamma2 0.0 is not used with icc (icc and cac set the cluster-period variance)",
        ),
        (
            {"tau2": 0.05, "sigma2": 0.95, "cac": 0.2},
            "argument cac",
            "cac 0.2 is not used with tau2 and sigma2 (gamma2 sets the cluster-period variance)",
        ),
    ],
)
def test_a_variance_argument_that_would_be_ignored_is_refused(function, variances, where, what):
    """icc with gamma2 and tau2/sigma2 with cac returned the number without it."""
    call = {
        "power": lambda: pe.power([3, 3, 3], 0.3, cell_size=30, **variances),
        "mdes": lambda: pe.mdes([3, 3, 3], cell_size=30, **variances),
        "clusters_needed": lambda: pe.clusters_needed(0.3, 3, cell_size=30, **variances),
    }[function]
    with pytest.raises(DesignError) as info:
        call()
    assert info.value.where == where
    assert info.value.what == what
    assert info.value.fix == COMBINATIONS


# 2. the CLI applies the API's design checks


def test_cli_power_refuses_a_design_that_does_not_separate_the_effect(tmp_path, capsys):
    """Every cluster starting in period 2 printed Var 2.51e12, power 0.05, exit 0."""
    design = trial_design(tmp_path, starts=(2, 2, 2, 2))
    line = check_error(capsys, main(["power", design]), tmp_path / "none")
    assert line == (
        f"pathfinder-eval: error: {design}: rollout: {NOT_SEPARATED}. Fix: let the clusters "
        "start the intervention in two or more different periods, so that some period has both "
        "control and intervention clusters (a stepped wedge such as [6, 6, 6, 6])"
    )
    with pytest.raises(DesignError) as info:  # the API: the same check, the same words
        pe.power(np.array([[0, 1, 1, 1, 1]] * 12, float), 0.3, cell_size=30, icc=0.05)
    assert info.value.what == NOT_SEPARATED and info.value.where == "argument design"


def test_cli_power_refuses_starts_after_the_last_period(tmp_path, capsys):
    """Starts 4 and 5 with periods 3 were silently never treated (validate refuses them)."""
    design = trial_design(tmp_path, periods="3")
    line = check_error(capsys, main(["power", design]), tmp_path / "none")
    assert line == (
        f"pathfinder-eval: error: {design}: rollout: start 4 of C02 is after the trial's last "
        "period 3 (6 clusters start after it). Fix: correct the start, or raise "
        "data.trial.periods to cover it"
    )


def test_cli_power_of_a_valid_design_is_the_oracles(tmp_path):
    """The example (4 sequences of 3, 5 periods, icc 0.05, 30 per cell, effect 0.3) with its
    immediate-effect analysis primary, against the closed form, normal reference."""
    spec = load_design(EXAMPLE)
    immediate = spec.analyses[1].model_copy(update={"primary": True})
    assert immediate.options["effect"] == "immediate"
    spec = spec.model_copy(update={"analyses": (spec.analyses[0], immediate)})
    summary = design_power(spec, reference="z")
    var = oracle_variance(standard_wedge([3, 3, 3, 3]), 0.05, 0.0, 0.95, 30)
    assert summary.variance == pytest.approx(var, rel=ORACLE_REL)
    assert summary.power == pytest.approx(oracle_power(0.3, var, 0.05), rel=ORACLE_REL)


# 3. extreme and non-finite inputs


@pytest.mark.parametrize(
    ("variances", "where"),
    [
        ({"icc": 1 - 1e-15}, "arguments icc, cell_size"),
        ({"tau2": 1e300, "sigma2": 1.0}, "arguments tau2, sigma2, cell_size"),
        ({"tau2": 0.1, "sigma2": 1e-300}, "arguments tau2, sigma2, cell_size"),
        ({"icc": 0.05, "cell_size": 1e300}, "arguments icc, cell_size"),
    ],
)
def test_variances_too_extreme_to_solve_are_said_so_not_blamed_on_the_design(variances, where):
    """All four said "the design does not separate the intervention effect" of a valid [3, 3]."""
    args = {"cell_size": 30, **variances}
    with pytest.raises(DesignError) as info:
        pe.power([3, 3], 0.3, **args)
    assert info.value.where == where
    assert info.value.what.startswith(f"{TOO_EXTREME}: a cluster's cell-mean covariance has ")
    assert info.value.fix == (
        "keep the cluster variance (tau2, or icc) within about 1e+12 times the within-cell "
        "variance (gamma2 + sigma2 / cell_size): e.g. a smaller cell_size, or an icc further "
        "from 1"
    )


def test_large_but_solvable_cells_still_give_the_oracles_power():
    """1e6 per cell (condition number about 1e5) is computed, not refused."""
    design = standard_wedge([3, 3])
    var = oracle_variance(design, 0.05, 0.0, 0.95, 1e6)
    got = pe.power([3, 3], 0.01, cell_size=1e6, icc=0.05)
    assert got == pytest.approx(oracle_power(0.01, var, 0.05), rel=1e-8)


@pytest.mark.parametrize(
    ("name", "value", "args"),
    [
        ("tau2", float("inf"), {"sigma2": 1.0}),
        ("sigma2", float("nan"), {"tau2": 0.1}),
        ("gamma2", float("inf"), {"tau2": 0.1, "sigma2": 1.0}),
        ("treatment_var", float("inf"), {"icc": 0.05}),
        ("icc", float("nan"), {}),
        ("cell_size", float("inf"), {"icc": 0.05}),
        ("cell_size", float("nan"), {"icc": 0.05}),
    ],
)
def test_non_finite_values_are_refused_by_name(name, value, args):
    """tau2=inf passed the stated bound "[0, inf]" and blamed the design."""
    kwargs = {"cell_size": 30, **args, name: value}
    with pytest.raises(DesignError) as info:
        pe.power([3, 3], 0.3, **kwargs)
    assert info.value.where == f"argument {name}"
    assert info.value.what == f"{name} {value!r} is not a finite number"


def test_an_unbounded_range_is_stated_open():
    with pytest.raises(DesignError) as info:
        pe.power([3, 3], 0.3, cell_size=30, tau2=-0.1, sigma2=1.0)
    assert info.value.what == "tau2 -0.1 is outside [0, inf)"


def test_cli_power_with_a_huge_cell_size_is_a_user_error(tmp_path, capsys):
    """data.trial.cell_size 1e20: "internal error: LinAlgError: Singular matrix", exit 1."""
    design = trial_design(tmp_path, cell_size="100000000000000000000")
    line = check_error(capsys, main(["power", design]), tmp_path / "none")
    assert line.startswith(f"pathfinder-eval: error: {design}: data.trial: {TOO_EXTREME}: ")


# 4. tiny levels


def test_power_at_a_tiny_alpha_keeps_its_digits():
    """alpha 1e-17 gave power 0.0 at effect 5 (1.0 at 1e-15): 1 − 5e-18 is 1.0 in floats."""
    design = standard_wedge([3, 3, 3])
    var = oracle_variance(design, 0.05, 0.0, 0.95, 30)
    for alpha in (1e-15, 1e-17, 1e-100):
        effect = np.sqrt(var) * stats.norm.isf(alpha / 2)  # power about one half
        got = pe.power([3, 3, 3], effect, cell_size=30, icc=0.05, alpha=alpha)
        assert got == pytest.approx(oracle_power(effect, var, alpha), rel=1e-9)
        assert got == pytest.approx(0.5, abs=1e-6)
    assert pe.power([3, 3, 3], 5.0, cell_size=30, icc=0.05, alpha=1e-17) == 1.0


def test_mdes_and_clusters_needed_at_a_tiny_alpha():
    """mdes raised brentq's "f(a) and f(b) must have different signs"."""
    design = standard_wedge([3, 3, 3])
    se = np.sqrt(oracle_variance(design, 0.05, 0.0, 0.95, 30))
    m = pe.mdes([3, 3, 3], cell_size=30, icc=0.05, alpha=1e-17)
    # the lower rejection tail is below 1e-30 there: the MDES is se (z_{1−α/2} + z_{0.8})
    assert m == pytest.approx(se * (stats.norm.isf(5e-18) + stats.norm.ppf(0.8)), rel=1e-9)
    n = pe.clusters_needed(0.3, 3, cell_size=30, icc=0.05, alpha=1e-17)
    assert n == 35

    def reached(k: int) -> float:
        return oracle_power(0.3, oracle_variance(standard_wedge([k] * 3), 0.05, 0, 0.95, 30), 1e-17)

    assert reached(n) >= 0.8 > reached(n - 1)


def test_cli_power_at_a_tiny_alpha(tmp_path, capsys):
    """--alpha 1e-20 was an internal error, exit 1."""
    assert main(["power", str(EXAMPLE), "--alpha", "1e-20", "--reference", "z"]) == 0
    summary = design_power(load_design(EXAMPLE), 1e-20, "z")
    se = np.sqrt(summary.variance)
    assert summary.mdes_80 == pytest.approx(
        se * (stats.norm.isf(5e-21) + stats.norm.ppf(0.8)), rel=1e-9
    )
    assert f"MDES at 80% power    {summary.mdes_80:.4f}" in capsys.readouterr().out


def test_cli_power_at_an_alpha_without_an_mdes_is_a_user_error(tmp_path, capsys):
    """--alpha 0.85: power at effect 0 is already above 80%; was an internal error."""
    code = main(["power", str(EXAMPLE), "--alpha", "0.85"])
    line = check_error(capsys, code, tmp_path / "none")
    assert line == (
        "pathfinder-eval: error: --alpha: alpha 0.85 is not below 0.8, the lowest power the "
        "MDES is reported at. Fix: use a conventional level such as 0.05"
    )


# 5. non-finite trial effects


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_non_finite_trial_effect_is_refused(tmp_path, capsys, value):
    """.nan printed "power at effect nan nan" (and wrote invalid JSON); .inf power 1.0."""
    design = trial_design(tmp_path, effect=value)
    out = tmp_path / "out"
    line = check_error(capsys, main(["power", design, "--out", str(out)]), out)
    shown = {".nan": "nan", ".inf": "inf", "-.inf": "-inf"}[value]
    assert line == (
        f"pathfinder-eval: error: {design}: data.trial.effect: bad value {shown}: Input should "
        "be a finite number. Fix: correct the value as described"
    )
    for key in ("effect", "icc", "effect_sd", "effect_corr"):
        with pytest.raises(ValidationError, match="finite number"):
            TrialSimulation(periods=5, **{key: float("nan")})


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_cli_effect_is_refused(tmp_path, capsys, value):
    """--effect nan gave an unrelated "no usable rows" error."""
    code = main(["power", str(EXAMPLE), "--simulate", "10", f"--effect={value}"])
    line = check_error(capsys, code, tmp_path / "none")
    assert line == (
        f"pathfinder-eval: error: pathfinder-eval power: argument --effect: {value!r} is not a "
        "finite number (e.g. 0.3 or -0.1). Fix: see `pathfinder-eval power --help` for the "
        "arguments"
    )


def test_a_huge_cli_effect_is_refused(tmp_path, capsys):
    """--effect 1e308 overflowed the simulated outcomes into an internal error."""
    code = main(["power", str(EXAMPLE), "--simulate", "20", "--effect", "1e308"])
    line = check_error(capsys, code, tmp_path / "none")
    assert "'1e308' is not an effect to plan for: use one between -1000 and 1000" in line


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--seed", "3"], "--seed"),
        (["--mdes"], "--mdes"),
        (["--workers", "2"], "--workers"),
        (["--mdes", "0.9", "--seed", "1"], "--mdes, --seed"),
    ],
)
def test_analytic_power_refuses_what_only_simulation_uses(tmp_path, capsys, args, flag):
    """Analytic power printed the same table whatever --seed, --mdes or --workers said."""
    line = check_error(capsys, main(["power", str(EXAMPLE), *args]), tmp_path / "none")
    assert f"{flag} {'are' if ',' in flag else 'is'} used only by simulated power" in line
    assert f"Fix: add --simulate N, or drop {flag} for analytic power" in line


def test_analytic_power_honours_effect_analysis_and_outcome(capsys):
    """--effect, --analysis and --outcome were silently ignored by analytic power: the power
    is now at --effect, for the named analysis's estimand and reference (the GEE's immediate
    effect on t(6)), and an unknown analysis or outcome is refused."""
    spec = load_design(EXAMPLE)
    assert main(["power", str(EXAMPLE), "--effect", "0.2", "--analysis", "stepped_wedge_gee"]) == 0
    out = capsys.readouterr().out
    gee = design_power(spec, effect=0.2, analysis="stepped_wedge_gee")
    default = design_power(spec)
    assert gee.reference == "t(6)" and default.reference == "t(11)"
    assert gee.effect == 0.2 and gee.power != default.power and gee.mdes_80 < default.mdes_80
    assert f"power at effect 0.2  {gee.power:.4f}" in out and "t(6)" in out
    assert "the immediate effect, as the analysis named (stepped_wedge_gee)" in out
    for args, where in (
        (["--analysis", "nope"], "--analysis: analytic power is for a stepped-wedge analysis"),
        (["--outcome", "nope"], "--outcome: no outcome 'nope' in the design"),
        (["--simulate", "20", "--reference", "z"], "--reference is used only by analytic"),
    ):
        assert main(["power", str(EXAMPLE), *args]) == 2
        assert where in capsys.readouterr().err
