"""Chart text is shown as written: matplotlib read '$' as the start of mathematics, so an
outcome named 'Spend $\\foo{$ per child' stopped the run with an internal error and
'Spend ($) per child ($)' was drawn as maths."""

from __future__ import annotations

import pandas as pd
import pytest

from pathfinder_eval.report.plots import plot_trends, to_svg


@pytest.mark.parametrize("name", [r"Spend $\foo{$ per child", "Spend ($) per child ($)"])
def test_a_dollar_in_a_label_is_drawn_as_text(name):
    trends = pd.DataFrame(
        {
            "period_label": ["2021", "2022", "2023"],
            "position": [0, 1, 2],
            "treated": [1.0, 2.0, 3.0],
            "comparison": [1.5, 2.0, 2.5],
        }
    )
    svg = to_svg(plot_trends(trends, name, [(0.5, "start 2022")]), f"Trends: {name}")
    assert f">{name}</text>" in svg  # the label itself, not maths glyphs
