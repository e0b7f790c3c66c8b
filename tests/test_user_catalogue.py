"""Your own derivations: any module is a catalogue, for the command line, the report and pytest.

A user module written into a temporary folder holds one right and one wrong claim (both
symbolic, so every run is fast).  ``--catalogue`` lists, verifies, prints and reports exactly
its claims, with their sources (a BibTeX key cited from ``--bib``); the ini option
``gradcheck_catalogues`` and ``[tool.gradcheck]`` in pyproject.toml name it too; an installed
package declares it by an entry point; ``gradcheck new claim`` writes one that passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gradcheck
from gradcheck import catalogue, cli

pytest_plugins = ["pytester"]

USER_MODULE = '''
"""Attention, my way: derivations of the paper's appendix.

The appendix's two derivative identities.
"""

import sympy as sp

from gradcheck import Derivation, Settings, claim, evidence

x = sp.Symbol("x", real=True)


@claim(
    title="Derivative of tanh",
    statement=r"$\\tanh'(x) = 1 - \\tanh^2(x)$",
    sources=("goodfellow2016", "Goodfellow et al. 2016, eq. (6.35)"),
    expected=("proved",),
)
def tanh_derivative() -> Derivation:
    derived = sp.diff(sp.tanh(x), x)
    stated = 1 - sp.tanh(x) ** 2
    return Derivation(statement=sp.Eq(sp.Derivative(sp.tanh(x), x), stated), objects={"derived": derived, "stated": stated})


@tanh_derivative.verifier
def _(d: Derivation, s: Settings):
    yield evidence.identity(d["derived"], d["stated"], "d/dx tanh(x) = 1 - tanh(x)^2")


@claim(
    title="A wrong derivative of the sigmoid",
    sources=("My notes, p. 3",),
    expected=("proved",),
)
def sigmoid_slip() -> Derivation:
    sig = 1 / (1 + sp.exp(-x))
    stated = sig * (1 + sig)  # the slip: 1 + sigma instead of 1 - sigma
    return Derivation(statement=sp.Eq(sp.Derivative(sig, x), stated), objects={"derived": sp.diff(sig, x), "stated": stated})


@sigmoid_slip.verifier
def _(d: Derivation, s: Settings):
    yield evidence.identity(d["derived"], d["stated"], "d/dx sigma(x) = sigma(x)(1 + sigma(x))")
'''

BIB = """
@book{goodfellow2016,
  author = {Ian Goodfellow and Yoshua Bengio and Aaron Courville},
  title = {Deep Learning},
  publisher = {MIT Press},
  year = {2016},
}
"""

RIGHT, WRONG = "mycat.tanh_derivative", "mycat.sigmoid_slip"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder holding the user's module ``mycat`` and a .bib, first on sys.path for the module's tests."""
    d = tmp_path_factory.mktemp("user")
    (d / "mycat.py").write_text(USER_MODULE)
    (d / "refs.bib").write_text(BIB)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(d))
        yield d


@pytest.fixture
def here(folder, monkeypatch) -> Path:
    monkeypatch.chdir(folder)
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- the command line --------------------------------------------------------------------


def test_list_shows_the_user_claims_with_their_sources_and_nothing_else(here, capsys):
    rc, out, _ = run(capsys, "list", "--catalogue", "mycat")
    assert rc == 0
    assert RIGHT in out and WRONG in out and "2 claims" in out
    assert "goodfellow2016" in out and "My notes, p. 3" in out
    assert "sigmoid.derivative" not in out  # the installed catalogue is not named


def test_verify_of_the_right_claim_exits_0(here, capsys):
    rc, out, _ = run(capsys, "verify", RIGHT, "--catalogue", "mycat")
    assert rc == 0 and "1 of 1 claims reached their expected verdict" in out


def test_verify_of_both_exits_1_naming_the_wrong_one_and_what_failed(here, capsys):
    rc, out, _ = run(capsys, "verify", "--catalogue", "mycat")
    assert rc == 1
    assert "1 of 2 claims reached their expected verdict" in out
    assert f"{WRONG}:" in out and "not proved: d/dx sigma(x) = sigma(x)(1 + sigma(x))" in out
    assert f"{RIGHT}:" not in out


def test_latex_gives_a_labelled_equation(here, capsys):
    rc, out, _ = run(capsys, "latex", RIGHT, "--catalogue", "mycat")
    assert rc == 0
    assert rf"\label{{claim:{RIGHT}}}" in out and r"\tanh" in out


def test_an_unknown_catalogue_is_an_error_naming_it_before_any_work(here, capsys):
    for argv in (["list"], ["verify"], ["latex", RIGHT], ["report", "--out", str(here / "never")]):
        rc, _, err = run(capsys, *argv, "--catalogue", "nosuchmodule")
        assert rc == 2, argv
        assert "--catalogue nosuchmodule: could not import module 'nosuchmodule'" in err
    assert not (here / "never").exists()


def test_the_same_id_from_two_catalogues_stops_naming_both_modules(here, capsys):
    pkg = here / "clashpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mycat.py").write_text(USER_MODULE)  # topic 'mycat' again: the same ids
    rc, _, err = run(capsys, "list", "--catalogue", "mycat", "--catalogue", "clashpkg")
    assert rc == 2
    assert "claim id 'mycat.tanh_derivative' is registered twice: by module mycat and by module clashpkg.mycat" in err


def test_pyproject_names_the_catalogues_from_a_folder_below_it(here, tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.gradcheck]\ncatalogues = ["mycat"]\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.syspath_prepend(str(tmp_path))  # where the CLI puts pyproject.toml's folder
    rc, out, _ = run(capsys, "list")
    assert rc == 0 and RIGHT in out and "sigmoid.derivative" not in out
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\ncatalogues = 'mycat'\n")
    rc, _, err = run(capsys, "list")
    assert rc == 2 and "[tool.gradcheck] catalogues must be a list of module names" in err


# --- the report --------------------------------------------------------------------------


def test_report_is_the_users_claims_sources_and_title(here, tmp_path, capsys):
    out = tmp_path / "report"
    rc, _, err = run(capsys, "report", "--catalogue", "mycat", "--bib", "refs.bib", "--out", str(out))
    assert rc == 1, err  # the wrong claim misses, and the report says so
    assert "1 of 2 claims missed their expected verdict" in err and WRONG in err
    doc = json.loads((out / "results.json").read_text())
    assert [c["id"] for c in doc["claims"]] == [WRONG, RIGHT]
    by_id = {c["id"]: c for c in doc["claims"]}
    assert by_id[RIGHT]["sources"] == ["goodfellow2016", "Goodfellow et al. 2016, eq. (6.35)"]
    assert by_id[RIGHT]["cites"] == ["goodfellow2016"] and by_id[WRONG]["sources"] == ["My notes, p. 3"]
    assert by_id[RIGHT]["command"] == f"gradcheck verify {RIGHT} --catalogue mycat --seed 0 --profile default"
    assert doc["title"] == "Attention, my way: derivations of the paper's appendix"
    assert doc["figures"] == [] and not (out / "figures").exists()  # none of the installed catalogue's
    tex, md = (out / "report.tex").read_text(), (out / "report.md").read_text()
    assert r"\title{Attention, my way: derivations of the paper's appendix}" in tex
    assert r"\cite{goodfellow2016}; Goodfellow et al. 2016, eq. (6.35)." in tex
    assert r"\bibliography{references}" in tex and (out / "references.bib").read_text() == BIB
    assert rf"\label{{claim:{RIGHT}}}" in tex and "sigmoid.derivative" not in tex
    assert "[goodfellow2016]; Goodfellow et al. 2016, eq. (6.35)" in md and "My notes, p. 3" in md
    assert "- [goodfellow2016] Ian Goodfellow and Yoshua Bengio and Aaron Courville (2016). Deep Learning." in md
    missing = [t for t in ("pdflatex", "bibtex", "pdftotext") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run scripts/ensure-latex.sh (the PDF is not built)")
    text = " ".join(
        subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True).stdout.split()
    )
    assert "mycat.tanh_derivative; source notes: [1]; Goodfellow et al. 2016, eq. (6.35)." in text
    assert "[1] Ian Goodfellow, Yoshua Bengio, and Aaron Courville. Deep Learning" in text


def test_report_title_option_and_a_bad_bib_file(here, tmp_path, capsys):
    rc, _, err = run(capsys, "report", RIGHT, "--catalogue", "mycat", "--bib", "nope.bib", "--out", str(tmp_path / "r"))
    assert rc == 2 and "--bib: no such file 'nope.bib'" in err and not (tmp_path / "r").exists()
    rc, _, err = run(
        capsys, "report", RIGHT, "--catalogue", "mycat", "--title", "Mine", "--no-pdf", "--out", str(tmp_path / "r")
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "r" / "results.json").read_text())["title"] == "Mine"
    assert (tmp_path / "r" / "report.md").read_text().startswith("# Mine\n")
    assert r"\texttt{goodfellow2016}" in (tmp_path / "r" / "report.tex").read_text()  # no --bib: as written


# --- pytest ------------------------------------------------------------------------------


def test_pytest_collects_the_catalogues_of_the_ini_option(folder, pytester):
    pytester.makeini(f"[pytest]\ngradcheck_catalogues = mycat\npythonpath = {folder}\n")
    result = pytester.runpytest("--collect-only", "-q", "--gradcheck-claims")
    ids = [ln for ln in result.outlines if ln.startswith("gradcheck-claims::")]
    assert ids == [f"gradcheck-claims::{WRONG}", f"gradcheck-claims::{RIGHT}"]
    pytester.runpytest(f"--gradcheck-claims={RIGHT}").assert_outcomes(passed=1)
    failed = pytester.runpytest(f"--gradcheck-claims={WRONG}")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(
        ["*BAD*not proved: d/dx sigma(x)*", f"*or: gradcheck verify {WRONG} --catalogue mycat *"]
    )


def test_pytest_refuses_an_unknown_catalogue_naming_the_ini_option(pytester):
    pytester.makeini("[pytest]\ngradcheck_catalogues = nosuchmodule\n")
    result = pytester.runpytest("--gradcheck-claims")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option gradcheck_catalogues nosuchmodule: could not import module 'nosuchmodule'" in result.stderr.str()


# --- installed catalogues ----------------------------------------------------------------


def test_an_installed_package_is_found_by_its_entry_point_without_any_option(tmp_path):
    (tmp_path / "epcat.py").write_text(USER_MODULE)
    info = tmp_path / "epcat-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epcat\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{catalogue.ENTRY_POINT_GROUP}]\nepcat = epcat\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "gradcheck.cli", "list", "epcat", "sigmoid"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    # the package's claims, beside those of proofs (declared the same way)
    assert "epcat.tanh_derivative" in out.stdout and "sigmoid.derivative" in out.stdout


def test_proofs_is_loaded_when_no_catalogue_is_named():
    assert "proofs" in catalogue.default_catalogues()
    assert "sigmoid.derivative" in gradcheck.registry()


# --- a starting point --------------------------------------------------------------------


def test_new_claim_writes_a_module_that_verify_passes_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    rc, out, _ = run(capsys, "new", "claim", "starter")
    assert rc == 0 and "gradcheck verify --catalogue starter" in out
    text = (tmp_path / "starter.py").read_text()
    assert "sp.diff(" in text and "evidence.identity(" in text and "evidence.checked(" in text
    rc, out, _ = run(capsys, "verify", "--catalogue", "starter")
    assert rc == 0, out
    assert "starter.softplus_derivative" in out and "1 of 1 claims reached their expected verdict" in out
    rc, _, err = run(capsys, "new", "claim", "starter")
    assert rc == 2 and "starter.py exists; not overwriting it" in err
    assert (tmp_path / "starter.py").read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["starter.py"]  # no temporary file left
    rc, _, err = run(capsys, "new", "claim", "Not-A-Module")
    assert rc == 2 and "NAME must be a module name" in err


def test_the_readme_template_section_exists():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Verify your own derivations", 1)[1].split("\n## ", 1)[0]
    for needed in ("gradcheck new claim", "--catalogue", "--bib", "gradcheck_catalogues", r"\input"):
        assert needed in section, needed
    assert textwrap.dedent(section).strip()
