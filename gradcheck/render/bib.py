"""Sources and BibTeX: which of a claim's sources are citation keys, and the entries they cite.

A claim's source is free text (``"Vaswani et al. 2017, eq. (1)"``) or a BibTeX key
(``"vaswani2017attention"``).  A source is *cited* (``\\cite{key}`` in LaTeX, ``[key]`` in
Markdown with the entry listed under References) when it is the key of an entry of the ``.bib``
file given to the report (``gradcheck report --bib FILE``); every other source is printed as
written.  The file is read here only for its keys and the author, title and year that Markdown
shows; LaTeX gets the file itself, through BibTeX.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["Bibliography", "read_bib", "looks_like_key"]

#: The shape of a BibTeX key as papers write them (``vaswani2017attention``, ``Vaswani:2017``).
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_:\-+]*$")
_ENTRY = re.compile(r"@\s*([A-Za-z]+)\s*[{(]\s*([^,\s{}()]+)\s*,")
_NOT_ENTRIES = {"string", "preamble", "comment"}


def looks_like_key(source: str) -> bool:
    """Whether ``source`` has the shape of a BibTeX key (one word of letters, digits, ``_:-+``)."""
    return bool(_KEY.match(source))


def _braced(text: str, start: int) -> str:
    """The value starting at ``text[start]`` (``{...}`` with nesting, ``"..."``, or a bare word)."""
    if start >= len(text):
        return ""
    if text[start] == "{":
        depth = 0
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start + 1 : i]
        return text[start + 1 :]
    if text[start] == '"':
        end = text.find('"', start + 1)
        return text[start + 1 : end if end > 0 else len(text)]
    m = re.match(r"[^,}\s]+", text[start:])
    return m.group(0) if m else ""


def _fields(body: str) -> dict[str, str]:
    out = {}
    for name in ("author", "title", "year"):
        m = re.search(rf"(?i)\b{name}\s*=\s*", body)
        if m:
            value = _braced(body, m.end())
            out[name] = " ".join(value.replace("{", "").replace("}", "").split())
    return out


@dataclasses.dataclass(frozen=True)
class Bibliography:
    """The entries of a ``.bib`` file: key to its author, title and year (where given)."""

    path: Path
    entries: Mapping[str, Mapping[str, str]]

    def cites(self, sources: Iterable[str]) -> list[str]:
        """The sources that are keys of this file, in their order."""
        return [s for s in sources if s in self.entries]

    def reference(self, key: str) -> str:
        """One line for a list of references: ``Author (year). Title.``"""
        e = self.entries[key]
        parts = [e.get("author", ""), f"({e['year']})" if e.get("year") else "", e.get("title", "")]
        text = " ".join(p for p in parts[:2] if p)
        return (f"{text}. {parts[2]}." if text else f"{parts[2]}.") if parts[2] else text or key


def read_bib(path: str | Path, named_by: str = "--bib") -> Bibliography:
    """Read the keys (and author, title, year) of a ``.bib`` file; a ValueError names ``named_by``."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{named_by}: no such file {str(p)!r}")
    if p.suffix != ".bib":
        raise ValueError(f"{named_by}: expected a BibTeX file ending in .bib, got {str(p)!r}")
    text = p.read_text(encoding="utf-8", errors="replace")
    found = [(m.group(1).lower(), m.group(2), m.start(), m.end()) for m in _ENTRY.finditer(text)]
    entries: dict[str, Mapping[str, str]] = {}
    for i, (kind, key, _, end) in enumerate(found):
        if kind in _NOT_ENTRIES:
            continue
        stop = found[i + 1][2] if i + 1 < len(found) else len(text)
        entries[key] = _fields(text[end:stop])
    if not entries:
        raise ValueError(f"{named_by}: {str(p)!r} holds no BibTeX entry (@article{{key, ...}})")
    return Bibliography(p, entries)
