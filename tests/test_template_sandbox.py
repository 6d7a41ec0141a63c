"""Template packs are untrusted: they render in a sandbox, cannot run code, read files outside
the template folders or change the view data, and a refusal is one located error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pathfinder_eval.cli import main
from pathfinder_eval.errors import PathfinderError
from pathfinder_eval.report import sandbox
from pathfinder_eval.report.render import default_templates, render_html

DESIGN = Path(__file__).resolve().parents[1] / "designs" / "examples" / "stepped_wedge_trial.yaml"


@pytest.fixture(scope="module")
def context():
    from pathfinder_eval.pipeline import evaluate
    from pathfinder_eval.report.context import build_context
    from pathfinder_eval.spec import load_design

    return build_context(evaluate(load_design(DESIGN)))


def pack(root: Path, body: str, name: str = "sections/cover.html.j2") -> Path:
    """A template pack overriding one partial with `body`."""
    path = root / "pack" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return root / "pack"


def refusal(context, folder: Path) -> str:
    with pytest.raises(PathfinderError) as err:
        render_html(context, folder)
    return err.value.one_line()


@pytest.mark.parametrize(
    "payload",
    [
        '{{ cycler.__init__.__globals__["os"].popen("touch {marker}").read() }}',
        '{{ joiner.__init__.__globals__.os.system("touch {marker}") }}',
        '{{ lipsum.__globals__["os"].popen("touch {marker}").read() }}',
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ sections.__class__ }}",
    ],
)
def test_code_execution_payloads_are_refused_and_run_nothing(tmp_path, context, payload):
    marker = tmp_path / "executed"
    body = "<p>cover</p>\n" + payload.replace("{marker}", str(marker)) + "\n"
    line = refusal(context, pack(tmp_path, body))
    assert not marker.exists()
    assert line.startswith(f"{tmp_path / 'pack' / 'sections' / 'cover.html.j2'}: line 2: ")
    assert "Fix:" in line


def test_unsafe_attribute_message_names_the_access(tmp_path, context):
    line = refusal(context, pack(tmp_path, "{{ ''.__class__.__mro__ }}\n"))
    assert "unsafe template code refused" in line and "'__class__'" in line
    assert "remove the access to Python internals" in line


def test_view_data_cannot_be_modified(tmp_path, context):
    before = list(context["sections"])
    line = refusal(context, pack(tmp_path, '{% set _ = sections.append("x") %}\n'))
    assert "unsafe template code refused" in line
    assert context["sections"] == before


@pytest.mark.parametrize(
    "target", ["../../../../../../etc/passwd", "/etc/passwd", "../base.html.j2"]
)
def test_include_outside_the_template_folders_is_refused(tmp_path, context, target):
    folder = pack(tmp_path, f'<p>cover</p>\n{{% include "{target}" %}}\n')
    line = refusal(context, folder)
    assert line.startswith(f"{folder / 'sections' / 'cover.html.j2'}: line 2: ")
    assert f"template asks for {target!r}, which is not inside the template folders" in line


def test_symlink_out_of_the_pack_is_refused(tmp_path, context):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not show", encoding="utf-8")
    folder = tmp_path / "pack" / "sections"
    folder.mkdir(parents=True)
    (folder / "cover.html.j2").symlink_to(secret)
    line = refusal(context, tmp_path / "pack")
    assert "'sections/cover.html.j2', which is not inside the template folders" in line


def test_missing_include_names_the_template_that_asked(tmp_path, context):
    folder = pack(tmp_path, '{% include "sections/nowhere.html.j2" %}\n')
    line = refusal(context, folder)
    assert line.startswith(f"{folder / 'sections' / 'cover.html.j2'}: line 1: ")
    assert "template 'sections/nowhere.html.j2' not found" in line


def test_display_logic_still_works_in_the_sandbox(tmp_path, context):
    body = (
        "{% set ns = namespace(n=0) %}{% for s in sections %}{% set ns.n = ns.n + 1 %}"
        "{% endfor %}<p>{{ ns.n }} sections, {{ title | upper | truncate(12) }}</p>\n"
    )
    html = render_html(context, pack(tmp_path, body))
    assert f"<p>{len(context['sections'])} sections, " in html


def test_cli_refuses_the_pack_in_one_line_and_writes_nothing(tmp_path, capsys):
    marker = tmp_path / "executed"
    folder = pack(tmp_path, f'{{{{ cycler.__init__.__globals__.os.system("touch {marker}") }}}}\n')
    out = tmp_path / "out"
    code = main(["run", str(DESIGN), "--out", str(out), "--templates", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("pathfinder-eval: error: ") and "cover.html.j2: line 1:" in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<p>{{ 1 / 0 }}</p>\n", "template failed while rendering (ZeroDivisionError"),
        (b"{{ 10 ** 5000 }}\n", "'**' with an exponent above 1,000"),
        (b"{{ 'a' * 100000000000 }}\n", "'*' would build more than 1,000,000 items"),
        (b"{{ title|truncate(1) }}\n", "template failed while rendering (AssertionError"),
        (b"\xff\xfe{{ title }}", "is not UTF-8 text"),
    ],
)
def test_template_failures_name_the_template(tmp_path, context, body, what):
    folder = tmp_path / "pack" / "sections"
    folder.mkdir(parents=True)
    (folder / "cover.html.j2").write_bytes(body)
    line = refusal(context, tmp_path / "pack")
    assert what in line and "cover.html.j2" in line and "Fix:" in line


def test_a_pack_is_recorded_with_its_files_hashes(tmp_path):
    """The report recorded the data's and the design's hashes but not the template pack
    that shaped its HTML."""
    import hashlib
    import json

    folder = pack(tmp_path, "<p>{{ title }}</p>\n")
    out = tmp_path / "out"
    assert main(["run", str(DESIGN), "--out", str(out), "--templates", str(folder)]) == 0
    doc = json.loads((out / "stepped_wedge_trial.json").read_text())
    digest = hashlib.sha256(b"<p>{{ title }}</p>\n").hexdigest()
    assert doc["provenance"]["templates"] == [{"path": "sections/cover.html.j2", "sha256": digest}]
    assert f"<code>{digest}</code>" in (out / "stepped_wedge_trial.html").read_text()
    plain = tmp_path / "plain"
    assert main(["run", str(DESIGN), "--out", str(plain)]) == 0
    assert (
        "templates"
        not in json.loads((plain / "stepped_wedge_trial.json").read_text())["provenance"]
    )


@pytest.mark.parametrize(
    "body",
    [
        "{{ 'x' | center(10 ** 10) | length }}\n",  # one filter asks for 10 GB
        "{{ (['a' * 1000000] * 1000) | join | length }}\n",  # each '*' within bounds: 1 GB
    ],
)
def test_a_pack_that_asks_for_too_much_memory_is_stopped_at_the_limit(tmp_path, context, body):
    """'*' and '**' were bounded per operation, not in memory: these took 10 GB and 1 GB."""
    line = refusal(context, pack(tmp_path, body))
    assert f"{tmp_path / 'pack' / 'sections' / 'cover.html.j2'}: line 1: " in line
    assert "template failed while rendering (out of memory)" in line
    assert f"a pack renders within {sandbox.MEMORY_LIMIT >> 20} MB" in line


def test_a_pack_that_runs_for_ever_is_stopped_at_the_cpu_limit(tmp_path, context, monkeypatch):
    monkeypatch.setattr(sandbox, "CPU_LIMIT", 1)
    body = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
    line = refusal(context, pack(tmp_path, body))
    assert line.startswith(f"{tmp_path / 'pack'}: template rendering used more than 1 s of CPU")


def test_a_pack_renders_as_the_packaged_templates_do(tmp_path, context):
    """The child process gives the same bytes as rendering in process."""
    cover = default_templates() / "sections" / "cover.html.j2"
    folder = pack(tmp_path, cover.read_text(encoding="utf-8"))
    assert render_html(context, folder) == render_html(context)


def test_the_child_does_not_import_from_the_current_folder(tmp_path, context, monkeypatch):
    """A jinja2.py in the folder the run starts from is not what the child imports."""
    marker = tmp_path / "imported"
    (tmp_path / "jinja2.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    assert "<p>cover</p>" in render_html(context, pack(tmp_path, "<p>cover</p>\n"))
    assert not marker.exists()


def test_a_pack_renders_under_a_lower_hard_cpu_limit(tmp_path):
    """Under a batch job's `ulimit -t 58` the child's setrlimit(60, 61) was refused and every
    pack failed as 'template rendering stopped (ValueError ...)'."""
    import subprocess
    import sys

    folder = pack(tmp_path, "<p>cover</p>\n")
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (58, 58))\n"
        "from pathlib import Path\n"
        "from pathfinder_eval.report.sandbox import render_confined\n"
        f"print(render_confined('sections/cover.html.j2', [Path({str(folder)!r})], {{}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "<p>cover</p>"


def test_a_pack_that_renders_too_much_html_is_refused_and_writes_nothing(tmp_path, context):
    """100 MB of HTML, each piece within the '*' bound and the whole within the memory limit,
    was written to the report: a pack could fill the disk."""
    body = "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}\n"
    line = refusal(context, pack(tmp_path, body))
    assert line.startswith(
        f"{tmp_path / 'pack'}: template rendered 95 MB of HTML, above the 64 MB a report may have"
    )
    out = tmp_path / "out"
    assert main(["run", str(DESIGN), "--templates", str(tmp_path / "pack"), "--out", str(out)]) == 2
    assert not out.exists() or not any(out.iterdir())
