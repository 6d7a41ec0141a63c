"""Reports in a real browser: headless Chromium renders each pilot's report to PNG and axe-core
finds no serious or critical accessibility violations. Runs where Chromium is installed
(.ci/run installs Debian's chromium); skipped with the reason elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import SHIPPED_DESIGNS
from pathfinder_eval.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DESIGNS = SHIPPED_DESIGNS
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Landmark rules (moderate impact) the reports must also pass: every piece of content inside a
# landmark, one banner, landmarks with distinct names.
LANDMARK_RULES = {"region", "landmark-unique", "landmark-no-duplicate-banner"}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_report_renders_and_passes_axe(name, browser, tmp_path):
    assert main(["run", str(DESIGNS[name]), "--out", str(tmp_path)]) == 0
    check_page(browser, tmp_path / f"{name}.html")


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_analysis_plan_renders_and_passes_axe(name, browser, tmp_path):
    assert main(["plan", str(DESIGNS[name]), "--out", str(tmp_path)]) == 0
    check_page(browser, tmp_path / f"{name}_plan.html")


def test_report_with_deviations_passes_axe(browser, tmp_path):
    """A report run against a registered plan it departs from: the deviations section."""
    design = DESIGNS["family_network"]
    assert main(["plan", str(design), "--out", str(tmp_path)]) == 0
    edited = tmp_path / "family_network.yaml"
    edited.write_text(design.read_text().replace("min_units: 20", "min_units: 21"))
    plan = str(tmp_path / "family_network_plan.json")
    assert main(["run", str(edited), "--out", str(tmp_path), "--plan", plan]) == 0
    check_page(browser, tmp_path / "family_network.html")


def check_page(browser, html: Path) -> None:
    """Rendered to a non-blank PNG, self-contained, no serious or critical axe violation, the
    landmark rules kept and one h1."""
    from axe_playwright_python.sync_playwright import Axe

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.as_uri())
    shot = html.with_suffix(".png")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    assert [u for u in requests if not u.startswith("file:")] == []  # self-contained
    result = Axe().run(page).response
    assert result["passes"], "axe did not run"
    bad = [
        (v["id"], v["impact"], v["help"])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    assert not {v["id"] for v in result["violations"]} & LANDMARK_RULES
    headings = page.eval_on_selector_all("h1", "els => els.length")
    assert headings == 1
    page.close()


def test_branded_example_has_one_banner_and_no_landmark_violations(browser, tmp_path):
    """The evidence body's override (reports/examples/evidence_body) keeps the landmarks
    right: its brand strip is a labelled aside, the cover the only banner."""
    from axe_playwright_python.sync_playwright import Axe

    brand = ROOT / "reports" / "examples" / "evidence_body"
    design = DESIGNS["family_network"]
    assert main(["run", str(design), "--out", str(tmp_path), "--templates", str(brand)]) == 0
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((tmp_path / "family_network.html").as_uri())
    result = Axe().run(page).response
    ids = {v["id"] for v in result["violations"]}
    assert not ids & LANDMARK_RULES, ids
    assert not [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert page.eval_on_selector_all("header", "els => els.length") == 1
    page.close()
