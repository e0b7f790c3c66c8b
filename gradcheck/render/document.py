"""The documents, walked once: what the report says and in which order, whatever the format.

:func:`write_report` and :func:`write_verification` walk the records (:func:`~.record.claim_entry`
dicts) and call a :class:`Writer` for each part: front matter, sections, paragraphs, the summary
table, each claim with its maths, its verification record, the figures.  The walk decides what
is shown and when; a writer (:class:`~.writers.LatexWriter`, :class:`~.writers.MarkdownWriter`)
only decides how each part is written.  Inline text is a list of :class:`Span` (text, prose with
``$...$`` maths, code, bold, a link to a label), so a writer escapes each kind its own way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .record import short

__all__ = [
    "Span",
    "text",
    "prose",
    "code",
    "bold",
    "link",
    "FindingItem",
    "Writer",
    "write_report",
    "write_verification",
    "section_titles",
]

Record = Mapping[str, Any]

#: One line of the figures section, before the figures.
FIGURES_INTRO = "Computed by JAX in float64 and drawn by matplotlib; every number in a caption was computed."


@dataclasses.dataclass(frozen=True)
class Span:
    """A piece of inline text: ``kind`` is text, prose, code, bold or link (``target`` a label)."""

    kind: str
    text: str
    target: str | None = None
    inner: Span | None = None


def text(s: str) -> Span:
    return Span("text", str(s))


def prose(s: str) -> Span:
    """Prose whose ``$...$`` spans (and ASCII maths) are maths."""
    return Span("prose", str(s))


def code(s: str) -> Span:
    return Span("code", str(s))


def bold(s: str) -> Span:
    return Span("bold", str(s))


def link(target: str, inner: Span) -> Span:
    """``inner`` pointing at the label ``target`` (a link where the format has them)."""
    return Span("link", inner.text, target, inner)


@dataclasses.dataclass(frozen=True)
class FindingItem:
    """One finding as the verification record lists it; ``counterexample`` and ``figure`` cut short."""

    label: str
    method: str
    how: str
    what: str
    counterexample: str | None
    figure: str | None


class Writer:
    """The parts of a document; a subclass writes each one as lines of its format.

    ``table`` takes ``columns`` as (header, alignment ``"l"``/``"r"``) pairs and rows of cells,
    each cell a list of :class:`Span`.  ``claim`` writes a claim's heading, ids and statement;
    ``claim_math`` its equation and derivation steps.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def text(self) -> str:
        return "\n".join(self.lines)

    def front_matter(self, meta: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def section(self, title: str, label: str, new_page: bool) -> None:
        raise NotImplementedError

    def paragraph(self, spans: Sequence[Span]) -> None:
        raise NotImplementedError

    def table(self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Sequence[Span]]]) -> None:
        raise NotImplementedError

    def claim(self, record: Record) -> None:
        raise NotImplementedError

    def claim_math(self, record: Record) -> None:
        raise NotImplementedError

    def record_summary(self, record: Record) -> None:
        raise NotImplementedError

    def record_error(self, line: str) -> None:
        raise NotImplementedError

    def findings(self, items: Sequence[FindingItem]) -> None:
        raise NotImplementedError

    def reproduce(self, command: str) -> None:
        raise NotImplementedError

    def references(self, meta: Mapping[str, Any]) -> None:
        """The cited entries (``meta["bibliography"]``), if any; nothing by default."""

    def figure(self, figure: Mapping[str, Any]) -> None:
        raise NotImplementedError


# --- the walks ---------------------------------------------------------------------------


def _how(f: Record) -> str:
    """``float64, rtol 1e-07, atol 1e-10, 260 examples, seed 0``: the parts a finding has."""
    parts = []
    if f.get("dtype"):
        parts.append(str(f["dtype"]))
    tol = f.get("tolerance")
    if isinstance(tol, dict):
        parts += [f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in tol.items()]
    elif tol is not None:
        parts.append(f"tolerance {tol}")
    if f.get("examples") is not None:
        parts.append(f"{f['examples']} examples")
    if f.get("seed") is not None:
        parts.append(f"seed {f['seed']}")
    return ", ".join(parts)


def _finding_item(f: Record) -> FindingItem:
    label = "FAILED" if not f["ok"] else (f["verdict"] or "supports")
    return FindingItem(
        label=label,
        method=f["method"],
        how=_how(f),
        what=f["what"],
        counterexample=None if f["counterexample"] is None else short(f["counterexample"]),
        figure=None if f["figure"] is None else short(f["figure"]),
    )


def _verification(w: Writer, record: Record) -> None:
    w.record_summary(record)
    if record["error"]:
        w.record_error(record["error"].strip().splitlines()[-1])
    if record["findings"]:
        w.findings([_finding_item(f) for f in record["findings"]])
    w.reproduce(record["command"])


def write_verification(w: Writer, record: Record) -> str:
    """The verification record of one claim (a :func:`~.record.result_record`) in ``w``'s format."""
    _verification(w, record)
    return w.text()


def _by_topic(records: Sequence[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r["topic"], []).append(r)
    return out


def section_titles(records: Sequence[Record], figures: Sequence[Record] = ()) -> list[str]:
    """The report's sections, in order: Summary, one per topic, Figures (when there are any)."""
    return ["Summary", *_by_topic(records)] + (["Figures"] if figures else [])


_SUMMARY_COLUMNS = (("claim", "l"), ("expected", "l"), ("reached", "l"), ("result", "l"), ("s", "r"))


def _summary_row(r: Record) -> list[list[Span]]:
    result = [text("holds") if r["holds"] else bold("misses")]
    if r.get("render_error"):
        result += [text(", "), bold("not rendered")]
    return [
        [link(f"sec:claim:{r['id']}", code(r["id"]))],
        [text(", ".join(r["expected"]))],
        [text(", ".join(r["reached"]) or "-")],
        result,
        [text(f"{r['seconds']:.1f}")],
    ]


def write_report(
    w: Writer,
    records: Sequence[Record],
    meta: Mapping[str, Any],
    figures: Sequence[Record] = (),
    topics: Mapping[str, str] | None = None,
) -> str:
    """The report in ``w``'s format: a summary, one section per topic, the figures.

    ``records`` are :func:`~.record.claim_entry` dicts, ``figures`` the figures' records (their
    files are expected in ``figures/<name>.pdf`` and ``.png`` beside the document), ``topics``
    one line of prose per topic.
    """
    topics = topics or {}
    titles = iter(section_titles(records, figures))
    w.front_matter(meta)
    w.section(next(titles), "sec:summary", new_page=False)
    w.table(_SUMMARY_COLUMNS, [_summary_row(r) for r in records])
    held = sum(1 for r in records if r["holds"])
    w.paragraph([text(f"{held} of {len(records)} claims reached their expected verdict.")])
    for topic, recs in _by_topic(records).items():
        w.section(next(titles), f"sec:topic:{topic}", new_page=True)
        if topics.get(topic):
            w.paragraph([prose(topics[topic])])
        for r in recs:
            w.claim(r)
            if r.get("render_error"):
                w.paragraph(
                    [bold("The derivation could not be rendered:"), text(" "), code(short(r["render_error"], 300))]
                )
            w.claim_math(r)
            _verification(w, r)
    if figures:
        w.section(next(titles), "sec:figures", new_page=True)
        w.paragraph([text(FIGURES_INTRO)])
        for f in figures:
            w.figure(f)
    w.references(meta)
    w.end()
    return w.text()
