"""The JSON record of how each claim was checked: ``results.json`` and the records the documents walk.

A record is plain strict JSON (no NaN, no objects): :func:`result_record` for one claim's run,
:func:`claim_entry` adds the claim's LaTeX and Markdown, :func:`results_document` writes them all
with the run's metadata.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import math
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sympy as sp

from .._environment import environment
from ..catalogue import Claim, ClaimResult, Finding, get
from ..symbolic import printing
from ..symbolic.printing import md_text

__all__ = [
    "claim_latex",
    "claim_markdown",
    "topic_intro",
    "reproduce_command",
    "sources_markdown",
    "jsonable",
    "short",
    "finding_record",
    "result_record",
    "claim_entry",
    "results_document",
]


# --- claims by id ------------------------------------------------------------------------


def _claim(claim) -> Claim:
    if isinstance(claim, Claim):
        return claim
    if isinstance(claim, str):
        return get(claim)  # KeyError naming the id and how to list them
    raise TypeError(f"claim must be a Claim or a claim id such as 'softmax.jacobian', got {type(claim).__name__}")


def claim_latex(claim, steps: bool = False, **params) -> str:
    """:func:`gradcheck.symbolic.printing.claim_latex` of a claim or a claim id (``'softmax.jacobian'``)."""
    return printing.claim_latex(_claim(claim), steps=steps, **params)


def claim_markdown(claim, **params) -> str:
    """:func:`gradcheck.symbolic.printing.claim_markdown` of a claim or a claim id."""
    return printing.claim_markdown(_claim(claim), **params)


def topic_intro(claim) -> str:
    """First paragraph of the docstring of the claim's topic module (its topic's summary).

    That is the module that defines the claim, or the package named after the topic above it
    (``proofs.chain`` for a claim defined in ``proofs.chain._window``).
    """
    c = _claim(claim)
    mod = inspect.getmodule(c.derive)
    parts = mod.__name__.split(".") if mod else []
    if c.topic in parts[:-1]:  # already imported: it holds the module that defines the claim
        mod = sys.modules.get(".".join(parts[: parts.index(c.topic) + 1]), mod)
    doc = inspect.getdoc(mod) if mod else None
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip() if doc else ""


# --- records -----------------------------------------------------------------------------


def reproduce_command(result: ClaimResult, catalogue: str | None = None) -> str:
    """The one command that re-runs a claim exactly as the report ran it (``--catalogue`` when the
    claim's catalogue was named rather than installed)."""
    s = result.settings
    where = f" --catalogue {catalogue}" if catalogue else ""
    return f"gradcheck verify {result.claim.id}{where} --seed {s.seed} --profile {s.profile}"


def _is_text(source: str) -> bool:
    """Free text (it has a space), not a key, a file name or a URL (printed as code)."""
    return any(ch.isspace() for ch in source.strip())


def sources_markdown(sources: Sequence[str], cites: Collection[str] = ()) -> str:
    """A claim's sources as Markdown: ``[key]`` where cited, a key-shaped source as code, text as text."""
    parts = [f"[{s}]" if s in cites else md_text(s) if _is_text(s) else f"`{s}`" for s in sources]
    return "; ".join(parts) if parts else "none cited"


def jsonable(x, depth: int = 0):
    """A strict-JSON version of a figure, counterexample or record (no NaN/inf, no objects).

    By hand rather than a ``json.JSONEncoder.default``: the encoder never sees floats (NaN is
    written as the non-JSON ``NaN``), nor SymPy numbers inside containers it already handles.
    """
    if depth > 20:
        return repr(x)
    if x is None or isinstance(x, (bool, str, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else repr(x)  # 'nan', 'inf', '-inf'
    if isinstance(x, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in x.items()}
    if isinstance(x, sp.Basic):
        if x.is_Integer:
            return int(x)
        if x.is_Number and x.is_finite:
            return float(x) if not x.is_Rational else str(x)
        return str(x)
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # numpy / jax arrays and scalars
        return jsonable(x.tolist(), depth + 1)
    if hasattr(x, "item") and callable(x.item):
        try:
            return jsonable(x.item(), depth + 1)
        except (TypeError, ValueError):
            pass
    if isinstance(x, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in x]
    return repr(x)


def short(x, n: int = 160) -> str:
    """``x`` (text, or anything as JSON) cut to ``n`` characters."""
    s = x if isinstance(x, str) else json.dumps(jsonable(x))
    return s if len(s) <= n else s[: n - 3] + "..."


def finding_record(f: Finding) -> dict[str, Any]:
    """What a finding checked and how: the fields a reader needs to reproduce it."""
    rec = dict(f.record or {})
    return {
        "verdict": f.verdict,
        "ok": f.ok,
        "what": f.what,
        "method": f.method,
        "figure": jsonable(f.figure),
        "counterexample": jsonable(f.counterexample),
        "dtype": rec.get("dtype"),
        "tolerance": jsonable(rec.get("tolerance")),
        "examples": jsonable(rec.get("examples")),
        "seed": jsonable(rec.get("seed")),
        "record": jsonable(rec),
    }


def result_record(
    result: ClaimResult,
    date: str | None = None,
    packages: Mapping[str, str] | None = None,
    *,
    catalogue: str | None = None,
    cites: Collection[str] = (),
) -> dict[str, Any]:
    """The JSON record of one claim's run: verdicts expected and reached, its sources, every finding.

    ``date`` defaults to now (UTC), ``packages`` to the versions :func:`gradcheck._environment.environment`
    records; ``catalogue`` goes into the reproducing command, ``cites`` are the sources that are
    keys of the report's ``.bib``.
    """
    if not isinstance(result, ClaimResult):
        raise TypeError(f"result must be a ClaimResult (claim.run()), got {type(result).__name__}")
    c, s = result.claim, result.settings
    findings = [finding_record(f) for f in result.findings]
    examples = [f["examples"] for f in findings if isinstance(f["examples"], int)]
    return {
        "id": c.id,
        "title": c.title,
        "topic": c.topic,
        "module": c.module,
        "sources": list(c.sources),
        "cites": [x for x in c.sources if x in cites],
        "statement": c.statement,
        "expected": list(c.expected),
        "reached": list(result.reached),
        "holds": result.ok,
        "summary": result.summary,
        "error": result.error,
        "figure": next((f["figure"] for f in findings if f["figure"] is not None), None),
        "counterexample": next((f["counterexample"] for f in findings if f["counterexample"] is not None), None),
        "dtype": sorted({f["dtype"] for f in findings if f["dtype"]}),
        "tolerance": [
            {"dtype": f["dtype"], **f["tolerance"]}
            if isinstance(f["tolerance"], dict)
            else {"dtype": f["dtype"], "tolerance": f["tolerance"]}
            for f in findings
            if f["tolerance"] is not None
        ],
        "examples": sum(examples) if examples else None,
        "seed": s.seed,
        "profile": s.profile,
        "max_examples": s.max_examples,
        "seconds": round(result.seconds, 3),
        "command": reproduce_command(result, catalogue),
        "date": date or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": dict(packages or environment()["packages"]),
        "findings": findings,
    }


def claim_entry(
    result: ClaimResult,
    date: str | None = None,
    packages: Mapping[str, str] | None = None,
    *,
    catalogue: str | None = None,
    cites: Collection[str] = (),
) -> dict[str, Any]:
    """:func:`result_record` plus the claim's LaTeX (statement and steps) and Markdown.

    A claim whose derivation cannot be rendered keeps its record, with ``render_error`` set.
    """
    rec = result_record(result, date, packages, catalogue=catalogue, cites=cites)
    c = result.claim
    rec.update(latex=None, latex_steps=None, markdown=None, render_error=None)
    try:
        rec["latex"] = printing.claim_latex(c)
        rec["latex_steps"] = printing.claim_latex(c, steps=True) if c.derivation().steps else None
        # the sources cited where the .bib has them
        rec["markdown"] = printing.claim_markdown(c, sources_md=sources_markdown(c.sources, cites))
    except Exception as e:  # one broken claim must not take the report down: it is shown as broken
        rec["render_error"] = f"{type(e).__name__}: {e}"
    return rec


def results_document(
    records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], figures: Iterable[Mapping[str, Any]] = ()
) -> str:
    """``results.json``: strict JSON (no NaN), one entry per claim, with the run's metadata."""
    doc = {**jsonable(dict(meta)), "figures": jsonable(list(figures)), "claims": list(records)}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
