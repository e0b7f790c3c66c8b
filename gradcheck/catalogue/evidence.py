"""Ready-made findings: the ways a claim's verifying half reaches a verdict.

Each function does the work and returns a :class:`~gradcheck.catalogue.Finding`; none of them
takes the expected outcome as an argument, so none can pass by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import hypothesis
from hypothesis import strategies as st

from .._check import check
from .._profiles import hypothesis_settings
from ..symbolic import prove_equal
from ._claim import Finding, Settings

__all__ = ["identity", "attack", "search_counterexample", "from_report", "checked", "measured", "fact"]


def identity(derived, textbook, what: str) -> Finding:
    """``proved`` when ``derived - textbook`` simplifies to 0, a failed finding otherwise."""
    ok = prove_equal(derived, textbook)
    return Finding(
        "proved" if ok else None,
        ok,
        what if ok else f"not proved: {what}",
        "sympy: difference simplifies to 0",
    )


def fact(ok: bool, what: str, method: str, verdict: str = "proved", *, curves=None, **record) -> Finding:
    """A finding established by the caller's own symbolic or numerical argument (``curves``: see :class:`Finding`)."""
    return Finding(
        verdict if ok else None,
        bool(ok),
        what if ok else f"does not hold: {what}",
        method,
        record=record,
        curves=curves or {},
    )


def _search(strategy, predicate, settings: Settings, max_examples: int | None):
    """Minimal example (Hypothesis-shrunk) for which ``predicate`` is True, or None."""
    n = max_examples or settings.max_examples
    try:
        return hypothesis.find(
            strategy,
            predicate,
            settings=hypothesis_settings(max_examples=n, profile=settings.profile),
            random=random.Random(settings.seed),
        )
    except hypothesis.errors.NoSuchExample:
        return None


def attack(
    violates: Callable[[Any], bool],
    strategy: st.SearchStrategy,
    what: str,
    settings: Settings,
    max_examples: int | None = None,
) -> Finding:
    """Let Hypothesis search for an input that ``violates`` a proved statement.

    Finding none is supporting evidence (verdict ``None``, ok); finding one is a failed
    finding that carries the shrunk counterexample.
    """
    n = max_examples or settings.max_examples
    cex = _search(strategy, violates, settings, n)
    rec = {"examples": n, "seed": settings.seed, "search": "hypothesis"}
    if cex is None:
        return Finding(None, True, f"Hypothesis found no violation of {what} in {n} examples", "hypothesis", record=rec)
    return Finding(None, False, f"Hypothesis found a violation of {what}", "hypothesis", counterexample=cex, record=rec)


def search_counterexample(
    refutes: Callable[[Any], bool],
    strategy: st.SearchStrategy,
    what: str,
    settings: Settings,
    max_examples: int | None = None,
) -> Finding:
    """Refute a statement by finding (and shrinking) an input where it fails.

    ``refuted`` with the shrunk counterexample when Hypothesis finds one; a failed finding when
    it does not (the statement survived the search, which is not what the catalogue says).
    """
    n = max_examples or settings.max_examples
    cex = _search(strategy, refutes, settings, n)
    rec = {"examples": n, "seed": settings.seed, "search": "hypothesis"}
    if cex is None:
        return Finding(None, False, f"no counterexample found to {what}", "hypothesis", record=rec)
    return Finding("refuted", True, what, "hypothesis (shrunk)", counterexample=cex, record=rec)


def from_report(report, what: str) -> Finding:
    """``verified`` when a :func:`gradcheck.check` report is ok; otherwise failed, with its first failure."""
    rec = report.record()
    if report.ok:
        return Finding("verified", True, what, "gradcheck.check", record=rec)
    first = report.failures[0]
    return Finding(
        None,
        False,
        f"{what}: {first.kind} failure",
        "gradcheck.check",
        counterexample=first.input_repr(),
        record=rec,
    )


def checked(fn: Callable, reference, what: str, settings: Settings, **check_kwargs) -> Finding:
    """:func:`gradcheck.check` at the settings' ``max_examples`` and ``seed``, as a finding (:func:`from_report`).

    ``check_kwargs`` are the check's own arguments (``shapes``, ``domain``, ``dtype``, ``order``, ...).
    """
    for key in ("max_examples", "seed"):
        if key in check_kwargs:
            raise TypeError(f"checked() takes {key} from settings, not as an argument")
    return from_report(
        check(fn, reference, max_examples=settings.max_examples, seed=settings.seed, **check_kwargs), what
    )


def measured(what: str, figure: Any, ok: bool, method: str, *, curves=None, **record) -> Finding:
    """A measurement; ``ok`` says whether the figure lies where the catalogue expects it."""
    return Finding("measured", bool(ok), what, method, figure=figure, record=record, curves=curves or {})
