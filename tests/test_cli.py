"""The `gradcheck` command: version, list, verify (exit codes, bad input)."""

import subprocess
import sys
from importlib.metadata import version

import pytest

from gradcheck import Claim, Derivation, Finding, cli
from gradcheck.catalogue import _registry as claims_mod


def test_version_comes_from_package_metadata():
    out = subprocess.run([sys.executable, "-m", "gradcheck.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"gradcheck {version('gradcheck')}"


def test_list_shows_ids_expected_verdicts_and_seeds(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the content, not the wrapping of an 80-column terminal
    assert cli.main(["list", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "sigmoid.derivative" in out and "sigmoid.max_derivative" in out
    assert "proved, verified" in out and "001_1861a09d8fa92c9f.txt" in out  # the sources, as proofs spells them
    assert "σ' is at most 1/4" in out and "$" not in out  # titles' maths as Unicode (tests/test_unicode_titles.py)


def test_verify_exits_0_when_every_selected_claim_reaches_its_verdict(capsys):
    assert cli.main(["verify", "sigmoid.max_derivative"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 claims reached their expected verdict" in out


@pytest.fixture
def missing_claim():
    c = claims_mod.register(
        Claim(
            id="demo.misses",
            title="a claim whose check fails",
            seeds=("000",),
            expected=("proved",),
            derive=lambda: Derivation(statement=None),
            verify=lambda d, s: [Finding(None, False, "an identity that did not simplify to 0", "sympy")],
        )
    )
    yield c
    claims_mod._REGISTRY.pop(c.id)


def test_verify_exits_1_and_says_why_when_a_claim_misses(missing_claim, capsys):
    assert cli.main(["verify", "demo.misses"]) == 1
    out = capsys.readouterr().out
    assert "MISS" in out and "an identity that did not simplify to 0" in out
    assert "demo.misses: a claim whose check fails" in out  # the claim, by its title


def test_verify_of_an_unknown_id_is_an_error_naming_it(capsys):
    assert cli.main(["verify", "nosuch.claim"]) == 2
    assert "no claim or topic 'nosuch.claim'" in capsys.readouterr().err


def test_verify_rejects_an_unknown_profile():
    with pytest.raises(SystemExit) as e:
        cli.main(["verify", "sigmoid", "--profile", "bogus"])
    assert e.value.code == 2
