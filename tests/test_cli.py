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


def test_list_shows_ids_expected_verdicts_and_seeds(capsys):
    assert cli.main(["list", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "sigmoid.derivative" in out and "sigmoid.max_derivative" in out
    assert "proved, verified" in out and "001 002" in out


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


def test_verify_of_an_unknown_id_is_an_error_naming_it(capsys):
    assert cli.main(["verify", "nosuch.claim"]) == 2
    assert "no claim or topic 'nosuch.claim'" in capsys.readouterr().err


def test_verify_rejects_an_unknown_profile():
    with pytest.raises(SystemExit) as e:
        cli.main(["verify", "sigmoid", "--profile", "bogus"])
    assert e.value.code == 2
