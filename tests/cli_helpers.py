"""The command line as the error tests drive it: a tidy design and data, one run, and the
one-line error contract."""

from __future__ import annotations

from pathlib import Path

from pathfinder_eval.cli import main

ROOT = Path(__file__).resolve().parents[1]
# The shipped designs every page test renders: the three pilots and the trial example.
SHIPPED_DESIGNS = {
    "family_help": ROOT / "designs/family_help.yaml",
    "family_network": ROOT / "designs/family_network.yaml",
    "rcc": ROOT / "designs/rcc.yaml",
    "stepped_wedge_trial": ROOT / "designs/examples/stepped_wedge_trial.yaml",
}

TIDY_DESIGN = """\
name: tidy_pilot
title: Tidy pilot
pilot: custom
unit_level: local_authority
time: {axis: reporting_year}
rollout:
  - {wave: W1, start: 2023-07-01, units: [Dorset, Lincolnshire]}
comparison: {pool: never_treated, min_units: 2}
outcomes:
  - {column: rate, scale: per_10000}
analyses:
  - {id: twfe, estimator: twfe}
data:
  source: tidy
  columns: {unit: la, period: year}
"""


LAS = ["Dorset", "Lincolnshire", "Bolton", "Bury", "Wigan", "Leeds"]


def tidy_csv(rows: list[str] | None = None) -> str:
    if rows is None:
        rows = [  # an LA level, a common trend and in Bolton a little noise (an exactly
            # additive series leaves nothing to estimate: estimators.checked_fit refuses it)
            f"{la},{y},{10 + i + (y - 2020) * 0.5 + (((7 * y) % 5) / 10 if la == 'Bolton' else 0)}"
            for i, la in enumerate(LAS)
            for y in range(2021, 2026)
        ]
    return "la,year,rate\n" + "\n".join(rows) + "\n"


def run(
    tmp_path: Path,
    design: str = TIDY_DESIGN,
    data: str | None = None,
    extra: list[str] | None = None,
    data_name: str = "d.csv",
    data_bytes: bytes | None = None,
) -> tuple[int, Path]:
    d = tmp_path / "design.yaml"
    d.write_text(design, encoding="utf-8")
    out = tmp_path / "out"
    argv = ["run", str(d), "--out", str(out)]
    if data is not None or data_bytes is not None:
        f = tmp_path / data_name
        if data_bytes is not None:
            f.write_bytes(data_bytes)
        else:
            f.write_text(data, encoding="utf-8")
        argv += ["--data", str(f)]
    code = main(argv + (extra or []))
    return code, out


def check_error(capsys, code: int, out: Path, *needles: str) -> str:
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("pathfinder-eval: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not out.exists() or not any(out.iterdir()), "no output may be written on error"
    return lines[0]
