"""``gradcheck report`` and ``gradcheck latex``: the files a paper takes its equations from.

The report runs on two claims of two topics (fast), then: every file is there and whole, the
JSON records what was checked, the printed command reproduces the claim, the PDF compiles with
one page per section, an interrupted run leaves the previous report intact, bad input is
refused before any work, and the LaTeX and the Markdown come from one walk over the records.
The PDF tests need pdflatex (``scripts/ensure-latex.sh`` installs it; CI runs that script
first): outside CI they skip with that reason, in CI (``CI=true``) they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

try:
    import fcntl
except ImportError:  # not POSIX: each xdist worker writes its own report
    fcntl = None
import pytest
import sympy as sp

import gradcheck
from gradcheck import cli, render
from gradcheck.catalogue import Claim, ClaimResult, Derivation, Finding, Settings, Step, select
from gradcheck.cli import _report as _cli_report
from gradcheck.render import figures
from gradcheck.symbolic import printing

SELECTION = ["sigmoid.max_derivative", "tanh.max_derivative", "chain.exploding"]


def require_pdf_tools() -> None:
    missing = [t for t in ("pdflatex", "pdfinfo", "pdftotext") if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed: run scripts/ensure-latex.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: the PDF test must run, not skip)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """One report for the module; under pytest-xdist the workers share it (one run, not two)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None else base
    out = root / "gradcheck-report"
    with open(root / "gradcheck-report.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (out / "results.json").exists():
            assert cli.main(["report", "--out", str(out), *SELECTION]) == 0
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _pages(pdf: Path) -> list[str]:
    n = int(
        re.search(
            r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        ).group(1)
    )
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(i), "-l", str(i), str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for i in range(1, n + 1)
    ]


# --- what the report contains ------------------------------------------------------------


def test_report_writes_tex_markdown_json_and_every_figure(report):
    for name in ("report.tex", "report.md", "results.json"):
        assert (report / name).stat().st_size > 0, name
    names = {p.stem for p in (report / "figures").iterdir()}
    assert names == {"sigmoid", "tanh", "window", "softmax_overflow"}
    for stem in names:
        assert (report / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        assert (report / "figures" / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
    tex = (report / "report.tex").read_text()
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    for stem in names:
        assert rf"\includegraphics[width=0.9\linewidth]{{figures/{stem}.pdf}}" in tex
        assert f"](figures/{stem}.png)" in (report / "report.md").read_text()
    # no staging folder or temporary file left behind
    assert not [p for p in report.rglob(".*")]


def test_results_json_records_verdicts_and_how_each_claim_was_checked(report):
    doc = json.loads(
        (report / "results.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"results.json is not strict JSON: {c}"),
    )
    assert [c["id"] for c in doc["claims"]] == SELECTION
    assert doc["packages"]["jax"] and doc["packages"]["sympy"] and doc["date"]
    for c in doc["claims"]:
        claim = gradcheck.get(c["id"])
        assert c["expected"] == list(claim.expected) and c["reached"] == list(claim.expected) and c["holds"]
        assert c["seed"] == 0 and c["profile"] == "default" and c["packages"] == doc["packages"]
        assert c["latex"] == claim.latex() and c["latex_steps"] == claim.latex(steps=True)
        if c["id"] != "chain.exploding":  # its checks are symbolic and at fixed depths: no example count
            assert c["examples"] and any(f["examples"] for f in c["findings"])
        for key in ("figure", "counterexample", "dtype", "tolerance", "date", "command"):
            assert key in c
    tanh = doc["claims"][1]  # the selection's order
    assert tanh["counterexample"] is not None  # the note's "tanh' < 1" is refuted at a shrunk point
    assert {f["name"] for f in doc["figures"]} == {"sigmoid", "tanh", "window", "softmax_overflow"}


def test_each_claim_shows_its_record_and_a_command_that_reproduces_it(report):
    md = (report / "report.md").read_text()
    tex = (report / "report.tex").read_text()
    for cid in SELECTION:
        command = f"gradcheck verify {cid} --seed 0 --profile default"
        assert command in md
        assert printing.tex_code(command) in tex
        assert rf"\label{{claim:{cid}}}" in tex and rf"\label{{claim:{cid}:steps}}" in tex
    assert md.count("**Verification record.**") == len(SELECTION)
    assert tex.count(r"\paragraph{Verification record.}") == len(SELECTION)
    assert "examples, seed 0" in md


def test_the_printed_command_reproduces_the_claim(capsys):
    rc = cli.main(["verify", "sigmoid.max_derivative", "--seed", "0", "--profile", "default"])
    assert rc == 0
    assert "1 of 1 claims reached their expected verdict" in capsys.readouterr().out


# --- the PDF -----------------------------------------------------------------------------


def test_missing_pdflatex_fails_in_ci_and_skips_with_the_reason_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="ensure-latex.sh"):
        require_pdf_tools()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="pdflatex, pdfinfo, pdftotext not installed"):
        require_pdf_tools()


def test_report_pdf_has_a_page_per_expected_section(report):
    require_pdf_tools()
    pdf = report / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF"), "pdflatex is installed but report.pdf was not built"
    doc = json.loads((report / "results.json").read_text())
    sections = render.section_titles(doc["claims"], doc["figures"])
    assert sections == ["Summary", "sigmoid", "tanh", "chain", "Figures"]
    pages = _pages(pdf)
    assert len(pages) >= len(sections)
    first_lines = [next((ln.strip() for ln in p.splitlines() if ln.strip()), "") for p in pages]
    # each section after the first starts a page of its own, headed "<number> <title>"
    for number, title in enumerate(sections[1:], start=2):
        assert f"{number} {title}" in [re.sub(r"\s+", " ", ln) for ln in first_lines], (title, first_lines)
    assert "1 Summary" in re.sub(r"\s+", " ", pages[0])
    text = re.sub(r"\s+", " ", " ".join(pages))
    assert "gradcheck verify sigmoid.max_derivative --seed 0 --profile default" in text
    assert "709.78" in text and "88.72" in text  # the computed overflow thresholds, in a caption


def test_every_registered_claims_latex_compiles_with_pdflatex(tmp_path):
    require_pdf_tools()
    body = []
    for claim in gradcheck.registry().values():
        try:
            tex = claim.latex()
        except ValueError:  # a statement that cannot be shown: test_render names it
            continue
        body += [r"\section*{" + printing.tex_text(claim.id) + "}", r"\begin{equation}", tex, r"\end{equation}"]
        if claim.derivation().steps:
            body += [r"\begin{align}", claim.latex(steps=True), r"\end{align}"]
    doc = render.PREAMBLE + "\\begin{document}\n" + "\n".join(body) + "\n\\end{document}\n"
    (tmp_path / "all.tex").write_text(doc)
    assert _cli_report.compile_pdf(tmp_path / "all.tex", runs=1).exists()
    # and a broken body is seen to fail
    (tmp_path / "bad.tex").write_text(
        doc.replace(r"\end{align}", "", 1) if r"\end{align}" in doc else doc.replace(r"\end{equation}", "", 1)
    )
    with pytest.raises(RuntimeError, match="pdflatex failed"):
        _cli_report.compile_pdf(tmp_path / "bad.tex", runs=1)


# --- written whole -----------------------------------------------------------------------


def test_write_whole_keeps_the_old_file_when_interrupted_mid_write(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("old report")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _cli_report.write_whole(target, "new report, " * 1000)
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # the temporary file is gone
    monkeypatch.undo()
    _cli_report.write_whole(target, "new")
    assert target.read_text() == "new" and oct(target.stat().st_mode & 0o777) != "0o600"


@pytest.mark.parametrize("interrupt_at", ["staging", "publishing"])
def test_an_interrupted_report_run_leaves_the_previous_report_whole(report, tmp_path, monkeypatch, interrupt_at):
    out = tmp_path / "out"
    shutil.copytree(report, out)
    before = _snapshot(out)
    calls = {"n": 0}
    real_write, real_replace = _cli_report.write_whole, os.replace

    def write_then_die(path, data):
        calls["n"] += 1
        if calls["n"] == 2:  # killed half-way through writing the second file
            Path(path).write_bytes((data.encode() if isinstance(data, str) else data)[:10])
            raise KeyboardInterrupt
        real_write(path, data)

    def replace_then_die(src, dst):
        if ".gradcheck-report-" in str(dst):  # a write into the staging folder
            return real_replace(src, dst)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    if interrupt_at == "staging":
        monkeypatch.setattr(_cli_report, "write_whole", write_then_die)
    else:
        monkeypatch.setattr(_cli_report.os, "replace", replace_then_die)
    claims = select(["sigmoid.max_derivative"])
    changed_fig = Figure()  # figures are deterministic: this one differs from the report's sigmoid
    changed_fig.suptitle("a new version")
    fast_figure = [figures.Figure("sigmoid", "t", "c", {}, changed_fig)]
    with pytest.raises(KeyboardInterrupt):
        _cli_report.build_report(
            claims,
            Settings(max_examples=20),
            out,
            _cli_report.Console(quiet=True),
            pdf=False,
            make_figures=lambda: fast_figure,
        )
    after = _snapshot(out)
    assert set(after) == set(before), "a file appeared or vanished"
    changed = [name for name in after if after[name] != before[name]]
    if interrupt_at == "staging":
        assert not changed  # nothing was published
    else:
        assert changed == ["figures/sigmoid.pdf"]  # moved in whole, before the interruption
        assert after["figures/sigmoid.pdf"].startswith(b"%PDF")
    assert not [p for p in out.rglob(".*")], "staging folder or temporary file left behind"


# --- the figures are computed ------------------------------------------------------------


def test_the_figures_show_the_numbers_their_claims_computed(report):
    # the bisections themselves are the claims' (softmax.stable, chain.window): tests/test_catalogue_*.py
    doc = json.loads((report / "results.json").read_text())
    data = {f["name"]: f["data"] for f in doc["figures"]}
    for dtype in ("float32", "float64"):
        overflow = data["softmax_overflow"][dtype]
        assert overflow["naive_threshold"] == pytest.approx(float(np.log(np.finfo(dtype).max)), abs=1e-3), dtype
        assert overflow["shifted_threshold"] is None
    assert data["window"]["max_width"] == pytest.approx(0.4477, abs=1e-4)


# --- the commands and their bad input ----------------------------------------------------


def test_latex_command_prints_the_equation_body_with_its_label(capsys):
    assert cli.main(["latex", "sigmoid.derivative"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == gradcheck.get("sigmoid.derivative").latex()
    assert r"\sigma'(z) = \sigma(z) \left(1 - \sigma(z)\right)" in out
    assert cli.main(["latex", "sigmoid.derivative", "--steps"]) == 0
    assert r"\label{claim:sigmoid.derivative:steps}" in capsys.readouterr().out


def test_bad_input_is_refused_before_any_work(tmp_path, capsys):
    assert cli.main(["latex", "no.such"]) == 2
    assert "no claim 'no.such'" in capsys.readouterr().err
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert cli.main(["report", "--out", str(a_file), "sigmoid"]) == 2
    assert "--out must be a folder" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    assert cli.main(["report", "--out", str(fresh), "no_such_topic"]) == 2
    assert "no claim or topic 'no_such_topic'" in capsys.readouterr().err
    assert not fresh.exists()
    with pytest.raises(SystemExit):
        cli.main(["report", "sigmoid"])  # --out is required


def test_a_claim_that_cannot_be_rendered_is_reported_as_such_not_dropped(tmp_path):
    import sympy as sp

    from gradcheck import Claim, Derivation, Finding

    broken = Claim(
        id="demo.unrenderable",
        title="demo",
        seeds=("003",),
        expected=("proved",),
        derive=lambda: Derivation(statement=sp.Gt(2, 1)),  # evaluates to True
        verify=lambda d, s: [Finding("proved", True, "2 > 1", "arithmetic")],
    )
    results, records, pdf = _cli_report.build_report(
        [broken],
        Settings(max_examples=1),
        tmp_path,
        _cli_report.Console(quiet=True),
        pdf=False,
        make_figures=lambda: [],
    )
    assert results[0].ok and pdf is None
    assert "evaluate=False" in records[0]["render_error"]
    assert "holds, **not rendered**" in (tmp_path / "report.md").read_text()
    assert "could not be rendered" in (tmp_path / "report.tex").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["claims"][0]["render_error"]


# --- math as math in the PDF -------------------------------------------------------------

#: What pdftotext shows where a line carries TeX source or ASCII maths instead of typeset maths
#: (``\^{}`` comes out as U+02C6; ``\_`` as a space).  The report before LaTeX titles had 134
#: such lines in 41 pages.
RAW_MATH = re.compile(r"\\_|\^\{|\u02c6|sigma['\u2019]\(|25\^L|dC/db|\\[a-z]+\{")


def test_report_pdf_text_has_no_ascii_maths_in_titles_or_statements(report):
    require_pdf_tools()
    text = "\n".join(_pages(report / "report.pdf"))
    bad = [ln for ln in text.splitlines() if RAW_MATH.search(ln)]
    assert len(bad) <= 2, bad  # at most a tenth of the lines of the same claims before
    titles = [ln for ln in text.splitlines() if re.match(r"\d+\.\d+\s+\D", ln)]
    assert len(titles) == len(SELECTION)
    assert not [ln for ln in titles if RAW_MATH.search(ln)]
    # statements: the italic line after "<id>; source notes: ..."
    flat = re.sub(r"\s+", " ", text)
    for cid in SELECTION:
        statement = flat.split(f"{cid}; source notes:", 1)[1][:200]
        assert not RAW_MATH.search(statement), statement
    # the exploding-gradient claim: its title and step typeset, the factor not swallowed
    assert "explode as 25L" in flat and "w j sigma" not in flat
    assert not re.search(r"w_?\{?j ?sigma", flat)


# --- one walk, two formats ---------------------------------------------------------------


class _Recording:
    """A writer that logs each part it is asked for (and its title or id), then writes it."""

    def __init__(self, writer):
        self.writer, self.calls = writer, []

    def __getattr__(self, name):
        part = getattr(self.writer, name)
        if name == "text":
            return part

        def logged(*args, **kwargs):
            first = args[0] if args else None
            key = first.get("id", first.get("name")) if isinstance(first, dict) else first
            self.calls.append((name, key if isinstance(key, str) else None))
            return part(*args, **kwargs)

        return logged


def _demo(statement, steps=(), cid="demo.one"):
    return Claim(
        id=cid,
        title="demo: <x> & 50%",
        seeds=("000",),
        expected=("proved",),
        derive=lambda: Derivation(statement=statement, steps=list(steps)),
        verify=lambda d, s: [],
        statement="a_j <= 1 & so on",
    )


def _report_records():
    x = sp.Symbol("x")
    ok = _demo(sp.Eq(x, 1, evaluate=False), [Step(x, sp.Integer(1), "a_j"), Step(x, 2 * x - x, "")], cid="demo.one")
    broken = _demo(sp.Gt(2, 1), cid="other.two")  # evaluates to True: not rendered
    findings = [
        Finding("proved", True, "x = 1", "sympy", counterexample=[1.0]),
        Finding(
            "verified",
            False,
            "agree",
            "gradcheck.check",
            figure={"r": 2.0},
            record={"dtype": "float64", "tolerance": {"rtol": 1e-7}, "examples": 20, "seed": 0},
        ),
    ]
    results = [
        ClaimResult(ok, findings, 0.5, Settings()),
        ClaimResult(broken, [], 0.1, Settings(), error="Traceback\nZeroDivisionError: x"),
    ]
    return [render.claim_entry(r, "2025-01-01", {"jax": "x"}) for r in results]


def test_latex_and_markdown_of_the_report_come_from_one_walk():
    records = _report_records()
    assert records[1]["render_error"] and records[0]["latex_steps"]
    meta = {"date": "2025-01-01", "command": "gradcheck report --out r", "packages": {"jax": "x"}}
    figures = [{"name": "sigmoid", "title": "$\\sigma$", "caption": "c"}]
    topics = {"demo": "The demo topic."}
    tex, md = _Recording(render.LatexWriter()), _Recording(render.MarkdownWriter())
    tex_text = render.write_report(tex, records, meta, figures, topics)
    md_text = render.write_report(md, records, meta, figures, topics)
    assert tex.calls == md.calls  # the same parts, in the same order, for the same records
    sections = [key for name, key in tex.calls if name == "section"]
    assert sections == render.section_titles(records, figures) == ["Summary", "demo", "other", "Figures"]
    assert [key for name, key in tex.calls if name == "claim"] == ["demo.one", "other.two"]
    assert ("findings", None) in tex.calls and ("record_error", "ZeroDivisionError: x") in tex.calls
    # and each format shows them: sections in order, both claims, the broken one as broken
    assert [ln[3:] for ln in md_text.splitlines() if ln.startswith("## ")] == sections
    assert re.findall(r"\\section\{([^}]*)\}", tex_text) == sections
    for text in (tex_text, md_text):
        assert text.count("Verification record.") == 2 and "could not be rendered" in text
    assert md_text == render.write_report(render.MarkdownWriter(), records, meta, figures, topics)


def test_a_writer_that_lacks_a_part_fails_loudly():
    class Partial(render.Writer):
        def front_matter(self, meta):
            self.lines.append("front")

    with pytest.raises(NotImplementedError):
        render.write_report(Partial(), _report_records(), {})
