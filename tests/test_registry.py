"""One parametrised test over the whole claim registry: every claim reaches its expected verdict.

Ids read the same here as in the CLI and in LaTeX labels: ``test_claim_reaches_expected_verdict[softmax.jacobian]``.
The registry itself: ids come from module and function name, duplicates are refused (naming both
modules), and nothing under ``gradcheck/`` imports ``proofs`` (it is an installed catalogue).
"""

import ast
from pathlib import Path

import pytest

import gradcheck
from gradcheck.catalogue import Settings, registry

CLAIMS = registry()


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_claim_reaches_expected_verdict(claim_id):
    claim = CLAIMS[claim_id]
    result = claim.run(Settings.from_profile())
    assert result.error is None, result.error
    failed = [f for f in result.findings if not f.ok]
    assert not failed, "\n".join(f"{f.what} ({f.method}); counterexample={f.counterexample}" for f in failed)
    assert set(result.reached) == set(claim.expected), (
        f"{claim_id}: reached {result.reached}, expected {claim.expected}"
    )
    for f in result.findings:
        if f.verdict == "refuted":
            assert f.counterexample is not None, f"{claim_id}: a refutation must carry its counterexample"
        if f.verdict == "measured":
            assert f.figure is not None, f"{claim_id}: a measurement must carry its figure"


def test_every_claim_cites_a_seed_and_a_known_verdict():
    for claim in CLAIMS.values():
        assert claim.sources and claim.seeds == claim.sources, claim.id
        assert all(s.endswith(".txt") for s in claim.sources), claim.id  # the notes' file names
        assert set(claim.expected) <= set(gradcheck.VERDICTS), claim.id


def test_a_claim_whose_findings_miss_the_expected_verdict_does_not_hold():
    # the registry's rule, seen to fail: a claim expecting 'refuted' that only proves
    from gradcheck import Claim, Derivation, Finding

    claim = Claim(
        id="demo.wrong_expectation",
        title="demo",
        seeds=("000",),
        expected=("refuted",),
        derive=lambda: Derivation(statement=None),
        verify=lambda d, s: [Finding("proved", True, "x", "test")],
    )
    r = claim.run(Settings(max_examples=1))
    assert not r.ok
    claim2 = Claim(
        id="demo.failed_finding",
        title="demo",
        seeds=("000",),
        expected=("proved",),
        derive=lambda: Derivation(statement=None),
        verify=lambda d, s: [Finding("proved", True, "x", "t"), Finding(None, False, "y", "t")],
    )
    assert not claim2.run(Settings(max_examples=1)).ok
    claim3 = Claim(
        id="demo.raises",
        title="demo",
        seeds=("000",),
        expected=("proved",),
        derive=lambda: Derivation(statement=None),
        verify=lambda d, s: 1 / 0,
    )
    r3 = claim3.run(Settings(max_examples=1))
    assert not r3.ok and "ZeroDivisionError" in r3.error


# --- declaring claims ---------------------------------------------------------------------------
def _declared(module: str, name: str, **kwargs):
    """A claim declared with @claim in the given module (its id comes from module and name)."""
    from gradcheck.catalogue import Derivation, claim

    def derive(**params):
        return Derivation(statement=None, objects=dict(params))

    derive.__module__, derive.__name__ = module, name
    return claim(title="demo", seeds=("000",), expected=("proved",), **kwargs)(derive)


def test_a_decorated_claim_gets_its_id_from_module_and_function_name(monkeypatch):
    from gradcheck.catalogue import Finding, _registry

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))  # registrations do not leak
    demo = _declared("proofs.demotopic", "identity", params={"n": 2})
    assert demo.id == "demotopic.identity" and demo.topic == "demotopic" and demo.derivation()["n"] == 2
    assert _declared("proofs.demotopic._part", "other").id == "demotopic.other"  # a topic split in modules

    @demo.verifier
    def _(d, s):
        return [Finding("proved", True, "x", "test")]

    assert demo.verify is _ and demo.run(Settings(max_examples=1)).ok
    with pytest.raises(ValueError, match="has a verifier already"):
        demo.verifier(_)
    assert "demotopic.identity" in _registry._REGISTRY


def test_a_duplicate_claim_id_is_refused(monkeypatch):
    from gradcheck.catalogue import _registry

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    _declared("proofs.demotopic", "twice")
    with pytest.raises(ValueError, match="'demotopic.twice' is registered twice"):
        _declared("proofs.demotopic", "twice")
    with pytest.raises(ValueError, match="registered twice: by module proofs.sigmoid and by module mine.sigmoid"):
        _declared("mine.sigmoid", "derivative")  # an id of the catalogue, from another module


def test_a_reimported_module_replaces_its_own_claims(monkeypatch):
    import sys
    import types

    from gradcheck.catalogue import _registry

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    source = (
        "from gradcheck.catalogue import Derivation, claim\n"
        "@claim(title='t', sources=('Someone 2020',), expected=('proved',))\n"
        "def again():\n"
        "    return Derivation(statement=None)\n"
    )
    first = None
    for _ in range(2):  # what importlib.reload, or a test runner importing afresh, does
        mod = types.ModuleType("reloaded_demo")
        monkeypatch.setitem(sys.modules, "reloaded_demo", mod)
        exec(compile(source, "reloaded_demo.py", "exec"), mod.__dict__)
        assert _registry._REGISTRY["reloaded_demo.again"] is mod.again and mod.again is not first
        first = mod.again
    assert first.sources == first.seeds == ("Someone 2020",) and first.module == "reloaded_demo"


def test_sources_are_tuples_of_strings_and_seeds_is_their_former_name():
    from gradcheck import Claim, Derivation

    def make(**kw):
        return Claim(id="demo.src", title="t", expected=("proved",), derive=lambda: Derivation(statement=None), **kw)

    assert make(seeds=("a",)).sources == ("a",) and make(sources=("a",)).seeds == ("a",)
    assert make().sources == ()  # a derivation of one's own may cite nothing
    with pytest.raises(ValueError, match="sources must be a tuple of non-empty strings"):
        make(sources="Vaswani 2017")
    with pytest.raises(ValueError, match="not both"):
        make(sources=("a",), seeds=("b",))
    with pytest.raises(TypeError, match="write \\('x',\\)"):
        gradcheck.claim(title="t", expected=("proved",), sources="x")


def test_a_claim_without_a_verifier_does_not_run(monkeypatch):
    from gradcheck.catalogue import _registry

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    bare = _declared("proofs.demotopic", "bare")
    with pytest.raises(ValueError, match="no verifier"):
        bare.run(Settings(max_examples=1))
    with pytest.raises(ValueError, match="claims without a verifier: \\['demotopic.bare'\\]"):
        gradcheck.registry()


def test_the_catalogue_names_its_seeds_and_refuses_unknown_ones():
    import proofs

    assert proofs.sources(("001",)) == (proofs.SEEDS["001"],)
    with pytest.raises(ValueError, match="seeds must name notes"):
        proofs.sources(("999",))
    with pytest.raises(TypeError, match="string"):
        proofs.sources("001")


# --- layers -------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    """Every module an ``import`` names in ``path``, at module level or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_nothing_under_gradcheck_imports_proofs():
    package = Path(gradcheck.__file__).parent
    importers = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if any(m == "proofs" or m.startswith("proofs.") for m in _imports(p))
    )
    assert importers == []


def test_the_import_check_sees_function_level_imports(tmp_path):
    hidden = tmp_path / "hidden.py"
    hidden.write_text("def f():\n    from proofs import sigmoid\n    import proofs.chain\n")
    assert {"proofs", "proofs.chain"} <= _imports(hidden)
