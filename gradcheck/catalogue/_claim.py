"""Claims, findings and verdicts: the types of the catalogue.

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
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._profiles import PROFILES, current_profile
from ..symbolic.derivation import Derivation

__all__ = ["VERDICTS", "Finding", "Settings", "Claim", "ClaimResult"]

#: The four verdicts of the design: ``proved`` (symbolic identity or bound), ``verified``
#: (numerical agreement over N examples), ``refuted`` (a counterexample is the result),
#: ``measured`` (a statistical or experimental figure).
VERDICTS = ("proved", "verified", "refuted", "measured")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One established fact about a claim.

    ``verdict`` is one of :data:`VERDICTS`, or ``None`` for supporting evidence that reaches no
    verdict of its own (a Hypothesis attack on a bound already proved).  ``ok`` says whether the
    check came out as the catalogue expects; a refutation that found its counterexample is
    ``ok``.  ``record`` says what was checked and how (examples, dtype, tolerance, seed, ...).
    ``curves`` holds arrays that a report figure draws (a sampled curve); they are bulky and
    not part of the record written to results.json.
    """

    verdict: str | None
    ok: bool
    what: str
    method: str
    figure: Any = None
    counterexample: Any = None
    record: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    curves: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

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
    def from_profile(cls, name: str | None = None, seed: int = 0) -> Settings:
        name = name or current_profile()
        if name not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
        return cls(max_examples=PROFILES[name]["max_examples"], seed=seed, profile=name)


@dataclasses.dataclass
class ClaimResult:
    claim: Claim
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
    """One statement of a catalogue, with its derivation, verification and expected verdict.

    ``sources`` cite where the statement comes from, each free text (``"Vaswani et al. 2017,
    eq. (1)"``) or a BibTeX key (``"vaswani2017attention"``, cited as ``\\cite{...}`` when the
    report is given the ``.bib`` that holds it); the catalogue decides how they are spelled
    (``proofs`` gives its notes' file names).  ``seeds`` is the former name of ``sources`` and
    stays an alias of it.  ``module`` is the module that declared the claim (``derive``'s, by
    default).  ``verify`` may be attached after construction with :meth:`verifier` (the
    decorated form of :func:`gradcheck.catalogue.claim`).
    """

    id: str
    title: str
    expected: tuple[str, ...]
    derive: Callable[..., Derivation]
    verify: Callable[[Derivation, Settings], Iterable[Finding]] | None = None  # a list or a generator
    statement: str = ""  # the precise statement in words (prose; the math comes from SymPy)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sources: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()  # the former name of ``sources``; the same tuple after construction
    module: str = ""

    def __post_init__(self):
        if not isinstance(self.id, str) or "." not in self.id or self.id != self.id.strip():
            raise ValueError(f"claim id must look like 'topic.name', got {self.id!r}")
        if isinstance(self.expected, str):
            raise TypeError(f"{self.id}: expected must be a tuple of verdicts, got the string {self.expected!r}")
        bad = [v for v in self.expected if v not in VERDICTS]
        if bad or not self.expected:
            raise ValueError(f"{self.id}: expected must be a non-empty subset of {VERDICTS}, got {self.expected!r}")
        for name in ("sources", "seeds"):
            given = getattr(self, name)
            if isinstance(given, str) or not all(isinstance(s, str) and s.strip() for s in given):
                raise ValueError(f"{self.id}: {name} must be a tuple of non-empty strings, got {given!r}")
        if self.sources and self.seeds and tuple(self.sources) != tuple(self.seeds):
            raise ValueError(f"{self.id}: give sources (seeds is its former name), not both")
        if not callable(self.derive):
            raise TypeError(f"{self.id}: derive must be callable, got {self.derive!r}")
        self.expected = tuple(self.expected)
        self.sources = self.seeds = tuple(self.sources or self.seeds)
        self.module = self.module or getattr(self.derive, "__module__", None) or ""
        self._cache: dict[tuple, Derivation] = {}

    @property
    def topic(self) -> str:
        return self.id.split(".", 1)[0]

    def verifier(self, fn: Callable[[Derivation, Settings], Iterable[Finding]]):
        """Attach the verifying half (a decorator); returns ``fn`` unchanged."""
        if self.verify is not None:
            raise ValueError(f"{self.id}: the claim has a verifier already")
        if not callable(fn):
            raise TypeError(f"{self.id}: a verifier must be callable, got {fn!r}")
        self.verify = fn
        return fn

    def derivation(self, **params) -> Derivation:
        """The SymPy derivation, computed once per parameter set."""
        merged = {**self.params, **params}
        key = tuple(sorted(merged.items()))
        if key not in self._cache:
            self._cache[key] = self.derive(**merged)
        return self._cache[key]

    def run(self, settings: Settings | None = None, **params) -> ClaimResult:
        """Derive, verify, and return the result; never raises for a failing claim."""
        if self.verify is None:
            raise ValueError(
                f"{self.id}: the claim has no verifier (decorate one with @{self.id.split('.')[-1]}.verifier)"
            )
        settings = settings or Settings.from_profile()
        t0 = time.perf_counter()
        try:
            findings = list(self.verify(self.derivation(**params), settings))
            error = None
        except Exception:  # a claim whose code raises has failed; the CLI shows why
            findings, error = [], traceback.format_exc()
        return ClaimResult(self, findings, time.perf_counter() - t0, settings, error)

    def latex(self, steps: bool = False, **params) -> str:
        # imported at call time: a catalogue that is only listed or run never loads the printer
        from ..symbolic.printing import claim_latex

        return claim_latex(self, steps=steps, **params)

    def markdown(self, **params) -> str:
        from ..symbolic.printing import claim_markdown

        return claim_markdown(self, **params)

    def __repr__(self) -> str:
        return f"Claim({self.id!r}, expected={self.expected})"
