"""The pytest plugin: options and ini options for the profile and seed, markers, claims as items,
and a plugin module that imports nothing heavy.

Runs of pytest inside a test go through pytest's own ``pytester``, in process where it can (the
outer session's JAX compile caches and catalogue are reused) and in a subprocess where the
question is what got imported.
"""

from __future__ import annotations

import inspect
import json
from importlib.metadata import entry_points

import hypothesis
import pytest

import gradcheck
import gradcheck._profiles as profiles
from gradcheck import catalogue
from gradcheck.catalogue import _registry

pytest_plugins = ["pytester"]

# An in-process pytester run drops the modules it imported from sys.modules when it ends; a
# catalogue first imported there would be imported again by the next run and register its claims
# twice.  Imported here, it stays.
catalogue.load_catalogue()

HEAVY = ("jax", "sympy", "hypothesis", "numpy", "gradcheck")

# The engine rewrite makes check(seed=None) mean _profiles.default_seed(); until it lands,
# check() defaults seed=0 and cannot see --gradcheck-seed.
CHECK_DEFAULTS_SEED_TO_0 = inspect.signature(gradcheck.check).parameters["seed"].default == 0

READ_DEFAULTS = """
    import hypothesis
    import gradcheck._profiles as profiles

    def test_defaults():
        print("SEEN", profiles.current_profile(), profiles.default_seed(),
              profiles.default_examples(), hypothesis.settings().max_examples)
"""


def printed(result, tag: str) -> list[str]:
    """The words an inner test printed after ``tag`` (with -s, after the file name's line)."""
    (line,) = [ln for ln in result.outlines if f"{tag} " in ln]
    return line.split(f"{tag} ", 1)[1].split()


def seen(result) -> list[str]:
    """What the inner test of READ_DEFAULTS printed: profile, seed, examples, Hypothesis examples."""
    result.assert_outcomes(passed=1)
    return printed(result, "SEEN")


@pytest.fixture
def outer_defaults():
    """The outer session's defaults, which an inner run must leave as it found them."""
    before = (profiles.current_profile(), profiles.default_seed(), hypothesis.settings().max_examples)
    yield
    assert (profiles.current_profile(), profiles.default_seed(), hypothesis.settings().max_examples) == before


def fake_claim(expected=("verified",)) -> catalogue.Claim:
    """A claim that costs nothing: one finding, reaching 'verified'."""
    return catalogue.Claim(
        id="fake.holds",
        title="one plus one is two",
        seeds=("000",),
        expected=expected,
        derive=lambda: catalogue.Derivation(statement=None),
        verify=lambda d, s: [catalogue.Finding("verified", True, "1 + 1 == 2", "arithmetic", record={"seed": s.seed})],
    )


# ---- the overrides behind the options -------------------------------------------------------
def test_use_overrides_the_environment_and_use_of_the_previous_restores_it(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "default")
    previous = profiles.use(profile="thorough", seed=9)
    try:
        assert (profiles.current_profile(), profiles.default_seed(), profiles.default_examples()) == (
            "thorough",
            9,
            5000,
        )
        assert gradcheck.Settings.from_profile().profile == "thorough"  # claims follow it too
    finally:
        profiles.use(**previous)
    assert (profiles.current_profile(), profiles.default_seed(), profiles.default_examples()) == ("default", 0, 200)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"profile": "fast"}, "profile must be one of"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"seed": True}, "seed must be an integer >= 0"),
    ],
    ids=["profile", "negative-seed", "bool-seed"],
)
def test_use_rejects_a_bad_profile_or_seed_and_changes_nothing(kwargs, message):
    with pytest.raises(ValueError, match=message):
        profiles.use(**kwargs)
    assert profiles.use() == {"profile": None, "seed": None}


# ---- loading ---------------------------------------------------------------------------------
def test_plugin_is_registered_under_pytest11_as_gradcheck():
    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "gradcheck"]
    assert ep.value == "_gradcheck_pytestplugin"


def test_loading_the_plugin_imports_neither_jax_nor_gradcheck(pytester):
    # a subprocess: this process has imported all of them already
    pytester.makeconftest(
        f"""
        import json, sys

        def pytest_unconfigure(config):
            with open("modules.json", "a") as f:
                f.write(json.dumps({{
                    "plugin": config.pluginmanager.has_plugin("gradcheck"),
                    "heavy": [m for m in {HEAVY!r} if m in sys.modules],
                }}) + "\\n")
        """
    )
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    # jaxtyping's plugin (installed with equinox, for the model tests) imports numpy; it is not
    # under test here, and neither is Hypothesis's, which imports Hypothesis once tests run
    assert pytester.runpytest_subprocess("-p", "no:jaxtyping", "--help").ret == 0
    assert (
        pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:jaxtyping").ret
        == 0
    )
    runs = [json.loads(ln) for ln in (pytester.path / "modules.json").read_text().splitlines()]
    assert runs == [{"plugin": True, "heavy": []}] * 2


# ---- profile and seed ------------------------------------------------------------------------
def test_profile_and_seed_options_set_the_defaults_and_the_hypothesis_profile(pytester, outer_defaults):
    pytester.makepyfile(READ_DEFAULTS)
    result = pytester.runpytest("-s", "--gradcheck-profile=thorough", "--gradcheck-seed=7")
    assert seen(result) == ["thorough", "7", "5000", "1000"]


def test_ini_options_set_them_and_the_command_line_wins(pytester, outer_defaults):
    pytester.makeini("[pytest]\ngradcheck_profile = thorough\ngradcheck_seed = 11\n")
    pytester.makepyfile(READ_DEFAULTS)
    assert seen(pytester.runpytest("-s")) == ["thorough", "11", "5000", "1000"]
    assert seen(pytester.runpytest("-s", "--gradcheck-seed=2", "--gradcheck-profile=default")) == [
        "default",
        "2",
        "200",
        "60",
    ]


def test_the_header_says_profile_and_seed_when_chosen(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.runpytest("--gradcheck-seed=4").stdout.fnmatch_lines(["gradcheck: profile * points per check), seed 4"])
    assert "gradcheck:" not in pytester.runpytest().stdout.str()


@pytest.mark.parametrize(
    "args, ini, message",
    [
        (["--gradcheck-profile=fast"], "", "--gradcheck-profile must be one of ['default', 'thorough'], got 'fast'"),
        (
            [],
            "gradcheck_profile = fast",
            "ini option gradcheck_profile must be one of ['default', 'thorough'], got 'fast'",
        ),
        (["--gradcheck-seed=-1"], "", "--gradcheck-seed must be an integer >= 0, got '-1'"),
        ([], "gradcheck_seed = seven", "ini option gradcheck_seed must be an integer >= 0, got 'seven'"),
    ],
    ids=["profile", "ini-profile", "seed", "ini-seed"],
)
def test_bad_profile_or_seed_is_a_usage_error_naming_the_option(pytester, args, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {message}" in result.stderr.str()


def test_check_uses_the_run_profile_and_seed(pytester, outer_defaults):
    # max_examples=61: Hypothesis gets min(profile's examples, 61): 60 by default, 61 when thorough
    pytester.makepyfile(
        """
        import jax.numpy as jnp, sympy as sp, gradcheck

        def test_check():
            report = gradcheck.check(lambda x: 1 / (1 + jnp.exp(-x)), lambda x: 1 / (1 + sp.exp(-x)),
                                     shapes=[()], domain=(-30.0, 30.0), max_examples=61)
            print("REPORT", report.hypothesis_examples, report.seed)
        """
    )
    result = pytester.runpytest("-s", "--gradcheck-profile=thorough", "--gradcheck-seed=7")
    result.assert_outcomes(passed=1)
    hypothesis_examples, seed = printed(result, "REPORT")
    assert hypothesis_examples == "61"
    if CHECK_DEFAULTS_SEED_TO_0:  # the one assertion that waits for the engine rewrite
        pytest.xfail("check() still defaults seed=0; with seed=None it reads _profiles.default_seed()")
    assert seed == "7"


# ---- markers ---------------------------------------------------------------------------------
def test_markers_are_registered_so_strict_markers_passes(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gradcheck
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)
    pytester.runpytest("--markers").stdout.fnmatch_lines(
        ["@pytest.mark.gradcheck: *", "@pytest.mark.gradcheck_claim(id): *"]
    )


# ---- claims as items -------------------------------------------------------------------------
def test_a_claim_is_an_item_that_passes_when_it_reaches_its_verdict(pytester, monkeypatch):
    monkeypatch.setitem(_registry._REGISTRY, "fake.holds", fake_claim())
    result = pytester.runpytest("-v", "--strict-markers", "-m", "gradcheck_claim", "--gradcheck-claims=fake")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gradcheck-claims::fake.holds PASSED*"])


def test_a_claim_item_fails_showing_claim_verdicts_finding_and_replay(pytester, monkeypatch):
    monkeypatch.setitem(_registry._REGISTRY, "fake.holds", fake_claim(expected=("proved",)))
    result = pytester.runpytest("--gradcheck-claims=fake.holds", "--gradcheck-seed=5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ claim fake.holds _*",
            "claim fake.holds: one plus one is two",
            "  expected verdict: proved",
            "  reached verdict:  verified",
            "  findings:",
            "    ok  verified  1 + 1 == 2 (arithmetic)",
            "  checked with profile * points per check), seed 5, in * s",
            "  replay: pytest --gradcheck-claims=fake.holds --gradcheck-profile=* --gradcheck-seed=5",
            "FAILED gradcheck-claims::fake.holds*",
        ]
    )


def test_a_real_claim_passes_and_fails_once_its_expected_verdict_is_changed(pytester, monkeypatch):
    claim = gradcheck.get("chain.term_bound")  # symbolic only: the cheapest claim
    assert claim.expected == ("proved",)
    pytester.runpytest("--gradcheck-claims=chain.term_bound").assert_outcomes(passed=1)
    monkeypatch.setattr(claim, "expected", ("proved", "verified"))
    result = pytester.runpytest("--gradcheck-claims=chain.term_bound")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  expected verdict: proved, verified", "  reached verdict:  proved"])


def test_claims_are_selected_like_gradcheck_verify(pytester, monkeypatch):
    monkeypatch.setitem(_registry._REGISTRY, "fake.holds", fake_claim())
    result = pytester.runpytest("--collect-only", "-q", "--gradcheck-claims=fake,chain.term_bound,softmax")
    ids = [ln for ln in result.outlines if ln.startswith("gradcheck-claims::")]
    softmax = [i for i in gradcheck.registry() if i.startswith("softmax.")]
    assert ids == [f"gradcheck-claims::{i}" for i in ["fake.holds", "chain.term_bound", *softmax]]
    result.stdout.fnmatch_lines([f"{len(ids)} tests collected*"])
    # they are collected as tests are, so -k and --deselect filter them
    kept = pytester.runpytest(
        "--collect-only",
        "-q",
        "--gradcheck-claims=softmax",
        "-k",
        "not jacobian",
        "--deselect",
        "gradcheck-claims::softmax.stable",
    ).outlines
    assert [ln for ln in kept if ln.startswith("gradcheck-claims::")] == [
        f"gradcheck-claims::{i}" for i in softmax if i not in ("softmax.jacobian", "softmax.stable")
    ]
    every = pytester.runpytest("--collect-only", "-q", "--gradcheck-claims").outlines
    assert len([ln for ln in every if ln.startswith("gradcheck-claims::")]) == len(gradcheck.registry())


def test_an_unknown_claim_pattern_is_a_usage_error(pytester):
    result = pytester.runpytest("--gradcheck-claims=softmax,nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: --gradcheck-claims: no claim or topic 'nope'" in result.stderr.str()


def test_without_the_option_no_claim_is_collected(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
