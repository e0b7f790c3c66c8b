"""Rendering: the JSON record of each claim's run, and the report walked once into LaTeX and Markdown.

* :mod:`.record`: ``results.json`` and the records (:func:`claim_entry`) the documents walk;
* :mod:`.document`: the walk (:func:`write_report`, :func:`write_verification`) over a :class:`Writer`;
* :mod:`.writers`: :class:`LatexWriter` and :class:`MarkdownWriter`.

The LaTeX of the maths itself (the notes' notation) is :mod:`gradcheck.symbolic.printing`, below
the catalogue; :func:`claim_latex` and :func:`claim_markdown` here also take a claim id.
"""

from .document import (
    FindingItem as FindingItem,
    Span as Span,
    Writer as Writer,
    section_titles as section_titles,
    write_report as write_report,
    write_verification as write_verification,
)
from .record import (
    claim_entry as claim_entry,
    claim_latex as claim_latex,
    claim_markdown as claim_markdown,
    finding_record as finding_record,
    reproduce_command as reproduce_command,
    result_record as result_record,
    results_document as results_document,
    topic_intro as topic_intro,
)
from .writers import PREAMBLE as PREAMBLE, LatexWriter as LatexWriter, MarkdownWriter as MarkdownWriter

__all__ = [
    "claim_entry",
    "claim_latex",
    "claim_markdown",
    "finding_record",
    "reproduce_command",
    "result_record",
    "results_document",
    "topic_intro",
    "FindingItem",
    "Span",
    "Writer",
    "section_titles",
    "write_report",
    "write_verification",
    "PREAMBLE",
    "LatexWriter",
    "MarkdownWriter",
]
