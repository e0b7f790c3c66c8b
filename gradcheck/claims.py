"""Claims, findings and verdicts, and the registry that ``proofs/`` fills.

A :class:`Claim` is one statement of the catalogue.  It has two halves:

* ``derive(**params) -> Derivation``: symbolic only.  The statement and the derivation steps as
  SymPy objects, computed by SymPy (``sympy.diff``, ``Matrix.jacobian``), never typed in as
  the answer.  Rendering (LaTeX, Markdown) reads this and nothing else.
* ``verify(derivation, settings) -> list[Finding]``: everything that establishes a verdict:
  symbolic proofs that the derived form equals the textbook form, numerical checks with
  :func:`gradcheck.check`, Hypothesis attacks on bounds, refutations with counterexamples,
  measurements with their figure.

A claim *holds* when every finding is ``ok`` and the set of verdicts its findings reached is
exactly the claim's ``expected`` set.  A finding that is not ``ok`` is a check that did not
come out as the catalogue says (an identity that did not simplify to 0, a disagreement, a
violated bound): it makes the claim fail whatever else was reached.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .symbolic.derivation import Derivation, Step


__all__ = [
    "VERDICTS",
    "SEEDS",
    "Step",
    "Derivation",
    "Finding",
    "Settings",
    "Claim",
    "ClaimResult",
    "register",
    "registry",
    "get",
    "select",
    "load_catalogue",
]

#: The four verdicts of the design: ``proved`` (symbolic identity or bound), ``verified``
#: (numerical agreement over N examples), ``refuted`` (a counterexample is the result),
#: ``measured`` (a statistical or experimental figure).
VERDICTS = ("proved", "verified", "refuted", "measured")

#: The source notes the claims come from, by their three-digit prefix.  The project cites
#: them by name; it never reads them.
SEEDS = {
    "000": "000_48fafa9910b50dec.txt",  # one-neuron chain, Nielsen's argument
    "001": "001_1861a09d8fa92c9f.txt",  # MLP Jacobians and ReLU
    "002": "002_5222ebc1bbc2933c.txt",  # causes and remedies
    "003": "003_e50f9bff32cdfab8.txt",  # quadratic vs cross-entropy cost, softmax
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One established fact about a claim.

    ``verdict`` is one of :data:`VERDICTS`, or ``None`` for supporting evidence that reaches no
    verdict of its own (a Hypothesis attack on a bound already proved).  ``ok`` says whether the
    check came out as the catalogue expects; a refutation that found its counterexample is
    ``ok``.  ``record`` says what was checked and how (examples, dtype, tolerance, seed, ...).
    """

    verdict: str | None
    ok: bool
    what: str
    method: str
    figure: Any = None
    counterexample: Any = None
    record: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS} or None, got {self.verdict!r}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard the numerical half of a claim works.  Recorded in every result."""

    max_examples: int = 200
    seed: int = 0
    profile: str = "default"

    @classmethod
    def from_profile(cls, name: str | None = None, seed: int = 0) -> "Settings":
        from ._profiles import current_profile, PROFILES

        name = name or current_profile()
        if name not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
        return cls(max_examples=PROFILES[name]["max_examples"], seed=seed, profile=name)


@dataclasses.dataclass
class ClaimResult:
    claim: "Claim"
    findings: list[Finding]
    seconds: float
    settings: Settings
    error: str | None = None  # a traceback when the claim's code raised

    @property
    def reached(self) -> tuple[str, ...]:
        got = {f.verdict for f in self.findings if f.ok and f.verdict}
        return tuple(v for v in VERDICTS if v in got)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and bool(self.findings)
            and all(f.ok for f in self.findings)
            and set(self.reached) == set(self.claim.expected)
        )

    @property
    def summary(self) -> str:
        """One line: the figure or counterexample that matters most, or what failed."""
        if self.error:
            return "error: " + self.error.strip().splitlines()[-1]
        bad = [f for f in self.findings if not f.ok]
        if bad:
            return "failed: " + bad[0].what
        for f in self.findings:
            if f.verdict == "refuted" and f.counterexample is not None:
                return f"counterexample {f.counterexample}"
        for f in self.findings:
            if f.verdict == "measured" and f.figure is not None:
                return f"figure {f.figure}"
        return "; ".join(f.what for f in self.findings[:1])


@dataclasses.dataclass
class Claim:
    """One statement of the catalogue, with its derivation, verification and expected verdict."""

    id: str
    title: str
    seeds: tuple[str, ...]
    expected: tuple[str, ...]
    derive: Callable[..., Derivation]
    verify: Callable[[Derivation, Settings], Iterable[Finding]]  # a list, or a generator of findings
    statement: str = ""  # the precise statement in words (prose; the math comes from SymPy)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if "." not in self.id or self.id != self.id.strip():
            raise ValueError(f"claim id must look like 'topic.name', got {self.id!r}")
        bad = [v for v in self.expected if v not in VERDICTS]
        if bad or not self.expected:
            raise ValueError(f"{self.id}: expected must be a non-empty subset of {VERDICTS}, got {self.expected!r}")
        seeds = []
        for s in self.seeds:
            key = s[:3]
            if key not in SEEDS:
                raise ValueError(f"{self.id}: seeds must name files of {sorted(SEEDS.values())}, got {s!r}")
            seeds.append(SEEDS[key])
        self.seeds = tuple(seeds)
        self._cache: dict[tuple, Derivation] = {}

    @property
    def topic(self) -> str:
        return self.id.split(".", 1)[0]

    def derivation(self, **params) -> Derivation:
        """The SymPy derivation, computed once per parameter set."""
        merged = {**self.params, **params}
        key = tuple(sorted(merged.items()))
        if key not in self._cache:
            self._cache[key] = self.derive(**merged)
        return self._cache[key]

    def run(self, settings: Settings | None = None, **params) -> ClaimResult:
        """Derive, verify, and return the result; never raises for a failing claim."""
        settings = settings or Settings.from_profile()
        t0 = time.perf_counter()
        try:
            findings = list(self.verify(self.derivation(**params), settings))
            error = None
        except Exception:  # a claim whose code raises has failed; the CLI shows why
            findings, error = [], traceback.format_exc()
        return ClaimResult(self, findings, time.perf_counter() - t0, settings, error)

    def latex(self, steps: bool = False, **params) -> str:
        from . import render

        return render.claim_latex(self, steps=steps, **params)

    def markdown(self, **params) -> str:
        from . import render

        return render.claim_markdown(self, **params)

    def __repr__(self) -> str:
        return f"Claim({self.id!r}, expected={self.expected})"


_REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add a claim to the registry; ids are unique and stable (papers cite them)."""
    if claim.id in _REGISTRY and _REGISTRY[claim.id] is not claim:
        raise ValueError(f"claim id {claim.id!r} is registered twice")
    _REGISTRY[claim.id] = claim
    return claim


def load_catalogue() -> None:
    """Import every module of ``proofs`` so that its claims register themselves."""
    import proofs

    for mod in pkgutil.iter_modules(proofs.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"proofs.{mod.name}")


def registry() -> dict[str, Claim]:
    load_catalogue()
    return dict(sorted(_REGISTRY.items()))


def get(claim_id: str) -> Claim:
    reg = registry()
    if claim_id not in reg:
        raise KeyError(f"no claim {claim_id!r}; `gradcheck list` shows the registered ids")
    return reg[claim_id]


def select(patterns: Iterable[str] = ()) -> list[Claim]:
    """Claims whose id equals a pattern or starts with ``pattern + '.'`` (a topic).

    An empty selection means every claim.  A pattern that matches nothing is an error.
    """
    reg = registry()
    patterns = list(patterns)
    if not patterns:
        return list(reg.values())
    out: dict[str, Claim] = {}
    for p in patterns:
        hits = [c for i, c in reg.items() if i == p or i.startswith(p.rstrip(".") + ".")]
        if not hits:
            raise KeyError(f"no claim or topic {p!r}; topics: {sorted({c.topic for c in reg.values()})}")
        out.update((c.id, c) for c in hits)
    return list(out.values())
