"""The replication registry: one test per entry (available entries must reproduce)."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import pytest

from pathfinder_eval.cli import main
from pathfinder_eval.replications.run import ENTRIES, data_found


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry(name, tmp_path, capsys):
    """Every entry reproduces its published numbers; one whose data are neither shipped nor in
    the shared reference folder (aca_stacked: `download` says where they are) is refused saying
    where to get them. Reference entries without their data still fail."""
    entry = ENTRIES[name]
    code = main(["replicate", name, "--out", str(tmp_path)])
    if entry.download and not data_found(entry, None):
        err = capsys.readouterr().err
        assert code == 2 and f"{entry.data} not found" in err and entry.download in err
        assert not list(tmp_path.iterdir())
        return
    doc = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    html = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
    assert '<html lang="en-GB">' in html and entry.citation in unescape(html)
    if entry.compute is None:
        assert code == 1 and doc["status"] == "pending"
        assert "pending" in capsys.readouterr().out
        return
    assert code == 0, capsys.readouterr().out
    assert doc["status"] == "pass"
    assert len(doc["numbers"]) == len(entry.published) > 0
    for row in doc["numbers"]:
        assert abs(row["reproduced"] - row["published"]) <= row["tolerance"]
        assert row["tolerance_reason"] and row["source"]
    assert all(p in unescape(html) for p in entry.lesson)


def test_list_names_every_entry(capsys):
    assert main(["replicate", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ENTRIES)


def test_unknown_entry_is_a_user_error(capsys):
    assert main(["replicate", "nope"]) == 2
    assert "replicate --list" in capsys.readouterr().err


def test_a_mismatch_is_reported_not_hidden(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from pathfinder_eval.replications.registry import Published

    entry = ENTRIES["hussey_hughes_power"]
    wrong = replace(
        entry,
        published=(
            Published("swCRTdesign Example 1 power", 0.80, 1e-9, "deliberately wrong", "test"),
        ),
    )
    monkeypatch.setitem(ENTRIES, "hussey_hughes_power", wrong)
    assert main(["replicate", "hussey_hughes_power", "--out", str(tmp_path)]) == 1
    doc = json.loads((tmp_path / "hussey_hughes_power.json").read_text())
    assert doc["status"] == "mismatch"
    assert "MISMATCH" in capsys.readouterr().out


def test_favara_imbs_numbers_are_the_committed_reference_values():
    """The dCDH entry's numbers are those its reference script wrote (no digit retyped)."""
    import pandas as pd

    ref = pd.read_csv(Path(__file__).parent / "reference" / "dcdh_favara_imbs" / "values.csv")
    published = {p.label: p.value for p in ENTRIES["favara_imbs_dcdh"].published}
    seen = 0
    for r in ref.itertuples():
        prefix = "" if r.run == "dynamic" else "normalised "
        if pd.isna(r.std_error):  # a test's p-value
            assert published[f"{prefix}{r.row} p"] == r.estimate
            seen += 1
            continue
        name = r.row.lower().replace("_", " ")
        assert published[f"{prefix}{name}"] == r.estimate
        assert published[f"{prefix}{name} SE"] == r.std_error
        seen += 2
    assert seen == len(published) == 48


def test_df_het_numbers_are_the_committed_reference_values():
    """The two-stage entry's full-precision numbers are those its reference script wrote, and
    the README's printed ATT and standard error round the state run's."""
    import pandas as pd

    from pathfinder_eval.replications import two_stage

    ref = pd.read_csv(Path(__file__).parent / "reference" / "did2s_df_het" / "values.csv")
    for first, table in (("state", two_stage._STATE), ("unit", two_stage._UNIT)):
        rows = ref[ref["first_stage"] == first]
        assert [tuple(r) for r in rows[["term", "estimate", "std_error"]].to_numpy()] == list(table)
    published = {p.label: p.value for p in ENTRIES["df_het_two_stage"].published}
    _, att, se = two_stage._STATE[0]
    assert (round(att, 3), round(se, 4)) == (published["ATT"], published["ATT SE"])
    assert len(published) == 2 + 2 * 21 + 2 * 22


def test_he_wang_entry_reads_the_csv_its_script_writes(tmp_path):
    """The pretrends entry (its data are not shipped, so `test_entry` sees only the refusal in
    CI): on a CSV laid out as scripts/he_wang_event_study.R writes it, with independent leads,
    the slope for 50% power is the closed form's (the product of one-lead pass probabilities)
    and the tolerances it derives are positive and finite."""
    import numpy as np
    import pandas as pd
    from scipy import optimize, stats

    from pathfinder_eval.replications.pretrends import CRITICAL, he_wang

    t = np.array([-4.0, -3.0, -2.0, 0.0, 1.0])
    sd = np.array([0.09, 0.07, 0.05, 0.06, 0.08])
    cov = np.diag(sd**2)
    cov[3, 4] = cov[4, 3] = 0.002  # lags may covary; the leads are independent
    frame = pd.DataFrame({"t": t, "beta": [0.05, -0.01, -0.03, 0.08, 0.2]})
    for j, e in enumerate(t):
        frame[f"cov_{int(e)}"] = cov[:, j]
    path = tmp_path / "he_wang.csv"
    frame.to_csv(path, index=False)

    def passing(s):
        z = s * (t[:3] + 1) / sd[:3]
        return np.prod(stats.norm.cdf(CRITICAL - z) - stats.norm.cdf(-CRITICAL - z))

    exact = optimize.brentq(lambda s: 0.5 - passing(s), 1e-6, 1.0, xtol=1e-14)
    got = he_wang(path)
    assert got["slope for 50% power"].value == pytest.approx(exact, rel=1e-5)
    assert 0 < got["slope for 50% power"].tolerance < 0.01 * exact
    # with independent leads the truncated mean of a lag moves only through its covariance
    # with the leads: none here
    assert got["mean after pre-testing, t = 1"].value == pytest.approx(0.0520587 * 2, abs=1e-6)
