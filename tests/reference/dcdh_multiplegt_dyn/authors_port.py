"""The authors' Python port of did_multiplegt_dyn run quietly on a committed panel, and its
rows: shared by the make_*_values.py scripts beside it (run in the environment make_values.py
names; not a dependency of pathfinder-eval)."""

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
from did_multiplegt_dyn import DidMultiplegtDyn

HERE = Path(__file__).resolve().parent


def panel(case: str) -> pd.DataFrame:
    """One committed panel of panels.csv (columns unit, period, treatment, y, …)."""
    panels = pd.read_csv(HERE / "panels.csv")
    return panels[panels["case"] == case].drop(columns="case")


def fit(frame: pd.DataFrame, **options: Any) -> tuple[dict[str, Any], str]:
    """The port's results on y by unit, period and treatment, and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        res = DidMultiplegtDyn(
            pl.from_pandas(frame), "y", "unit", "period", "treatment", **options
        ).fit()
    return res.result["did_multiplegt_dyn"], printed.getvalue()


def rows(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The average total effect, effects and placebos of one result: name, estimate, SE and
    switchers (a block the port leaves empty, as the total effect with trends_lin, skipped)."""
    for block in ("ATE", "Effects", "Placebos"):
        table = result.get(block)
        if table is None or table["Estimate"].isna().all():
            continue
        for name, row in table.iterrows():
            yield {
                "row": name,
                "estimate": row["Estimate"],
                "std_error": row["SE"],
                "switchers": row["Switchers"],
            }


def write(values: list[dict[str, Any]], name: str) -> None:
    """The values as HERE/name, every digit a double holds."""
    pd.DataFrame(values).to_csv(HERE / name, index=False, float_format="%.17g")
