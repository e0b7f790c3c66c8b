r"""Prose around the maths: escaping for LaTeX text mode and Markdown, ``$...$`` spans, and the
ASCII maths that checks write in words (``sigma'(z_j)``, ``25^(L-1)``, ``dC/db_1``) typeset.

Hand-written rather than taken from a library: pylatexenc and similar escape text but know
neither the ``$...$`` convention of the claims nor their ASCII maths, and the PDF must copy and
paste back to the command that was printed (:func:`tex_code`).
"""

from __future__ import annotations

import re

__all__ = [
    "tex_text",
    "split_math",
    "ascii_math",
    "tex_prose",
    "plain_prose",
    "tex_heading",
    "tex_code",
    "md_text",
    "md_prose",
]

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    # with the default OT1 font encoding <, > and | are not in the text font
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
    # what authors type in prose; anything else outside ASCII is shown as its code point
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≠": r"$\neq$",
    "≈": r"$\approx$",
    "±": r"$\pm$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "→": r"$\to$",
    "∞": r"$\infty$",
    "σ": r"$\sigma$",
    "δ": r"$\delta$",
    "Σ": r"$\Sigma$",
    "α": r"$\alpha$",
    "λ": r"$\lambda$",
    "′": "'",
    "–": "--",
    "—": "---",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "…": r"\dots{}",
}


def tex_text(s: str) -> str:
    """Escape prose for LaTeX text mode (pdflatex, default fonts)."""
    out = []
    for ch in str(s):
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(rf"\texttt{{U+{ord(ch):04X}}}")
    return "".join(out)


#: ``$...$`` in prose: inline math, written as LaTeX source (a ``\$`` is a dollar sign).
_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)


def split_math(s: str) -> list[tuple[bool, str]]:
    """``s`` as (is_math, text) pieces: the ``$...$`` spans, and the ASCII maths of the prose
    between them (``sigma'(z_j)``, ``25^(L-1)``, ``dC/db_1``) typeset by :func:`ascii_math`."""
    s = str(s)
    out, pos = [], 0
    for m in _MATH.finditer(s):
        if m.start() > pos:
            out += _ascii_pieces(s[pos : m.start()])
        out.append((True, m.group(1)))
        pos = m.end()
    if pos < len(s):
        out += _ascii_pieces(s[pos:])
    return out


# --- ASCII maths in prose written by the checks (numbers they computed, in words) ---------------
_GREEK = ("sigma", "Sigma", "alpha", "delta", "Delta", "lambda", "epsilon", "xi", "tanh")
_SUB = r"(?:\{[^{}\s]*\}|[A-Za-z0-9]+)"
_SUP = r"(?:\([^()\s]*\)|\{[^{}\s]*\}|-?[A-Za-z0-9]+)"
#: a token that is maths: a primed or applied activation, a subscript on a one-letter name, a power,
#: a Leibniz quotient
_MATHY = re.compile(
    r"(?:\b(?:sigma|Sigma|tanh|relu|f|G)'+\("
    r"|(?<![A-Za-z0-9_.])[A-Za-z]_" + _SUB + r"|[A-Za-z0-9)|]\^" + _SUP + r"|\bd(?:C|Loss|[a-z])/d[a-zA-Z])"
)
_TOKEN = re.compile(r"\S+")


def _tex_token(t: str) -> str:
    t = re.sub(
        r"\bd(C|Loss|[a-z](?:_" + _SUB + r")?)/d([A-Za-z](?:_" + _SUB + r")?)",
        lambda m: rf"\partial {m.group(1)}/\partial {m.group(2)}",
        t,
    )
    t = re.sub(r"\bLoss\b", r"\\mathrm{Loss}", t)
    t = re.sub(r"\b(" + "|".join(_GREEK) + r")\b", r"\\\1", t)
    t = re.sub(
        r"_(\{[^{}\s]*\}|[A-Za-z0-9]+)",
        lambda m: "_" + (m.group(1) if m.group(1).startswith("{") else "{" + m.group(1) + "}"),
        t,
    )
    t = re.sub(r"\^\(([^()\s]*)\)", r"^{\1}", t)
    t = re.sub(r"\^(-?[A-Za-z0-9]+)", r"^{\1}", t)
    return t.replace(">=", r"\geq ").replace("<=", r"\leq ").replace("!=", r"\neq ")


def ascii_math(s: str) -> str:
    """Prose with its ASCII maths as ``$...$``: each whitespace-separated token that is maths
    (:data:`_MATHY`), with the operators and numbers between such tokens, becomes one span."""
    return "".join(f"${t}$" if m else t for m, t in _ascii_pieces(s))


def _ascii_pieces(s: str) -> list[tuple[bool, str]]:
    toks = list(_TOKEN.finditer(s))
    mathy = [bool(_MATHY.search(t.group())) for t in toks]
    glue = re.compile(r"^[-+=<>/*|()0-9.]+$|^(?:<=|>=|!=)$")
    out, pos, i = [], 0, 0
    while i < len(toks):
        if not mathy[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(toks) and (mathy[j + 1] or glue.match(toks[j + 1].group())):
            j += 1
        while j > i and not mathy[j] and not re.match(r"^[0-9.]+[.,;:]?$", toks[j].group()):
            j -= 1  # a trailing operator or bracket is not part of it
        a, b = toks[i].start(), toks[j].end()
        span = s[a:b]
        # punctuation that ends the sentence stays prose; brackets that do not balance too
        lead_m = re.match(r"^['(\[]*", span)
        assert lead_m is not None  # the pattern matches the empty string too
        lead = lead_m.group()
        if lead and (lead.count("'") or span.count("(") > span.count(")")):
            a += len(lead)
            span = span[len(lead) :]
        trail_m = re.search(r"'?[.,;:]*$", span)
        assert trail_m is not None  # the pattern matches the empty string too
        trail = trail_m.group()
        while span.count(")") > span.count("(") and span[: len(span) - len(trail)].endswith(")"):
            trail = ")" + trail
            span = span[: -len(trail)] + trail
        body = span[: len(span) - len(trail)] if trail else span
        if a > pos:
            out.append((False, s[pos:a]))
        out.append((True, _tex_token(body)))
        if trail:
            out.append((False, trail))
        pos = b
        i = j + 1
    if pos < len(s):
        out.append((False, s[pos:]))
    return out


def tex_prose(s: str) -> str:
    """Prose for LaTeX text mode: ``$...$`` spans kept as math, everything else escaped."""
    return "".join(f"${t}$" if math_ else tex_text(t.replace(r"\$", "$")) for math_, t in split_math(s))


def plain_prose(s: str) -> str:
    r"""Prose with its math flattened to ASCII (PDF bookmarks, terminals, image alt text):
    ``$\left\|\frac{\partial C}{\partial b^{l}}\right\|$`` becomes ``||partial C/partial b^l||``."""

    def flat(t: str) -> str:
        t = re.sub(r"\\(left|right|mathrm|operatorname|text)", "", t)
        t = re.sub(r"\\[,;!]", " ", t)
        t = re.sub(r"([_^])\{([^{}]*)\}", r"\1\2", t)
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", t)
        t = re.sub(r"\\([A-Za-z]+) ?", r"\1 ", t).replace("\\|", "||")
        return re.sub(r" +", " ", t.replace("{", "").replace("}", "")).strip()

    return "".join(flat(t) if math_ else t.replace(r"\$", "$") for math_, t in split_math(s))


def tex_heading(s: str) -> str:
    """A section title: math typeset, and a plain-text version for the PDF's bookmarks."""
    tex = tex_prose(s)
    if tex == tex_text(s):
        return tex
    return rf"\texorpdfstring{{{tex}}}{{{tex_text(plain_prose(s))}}}"


def tex_code(s: str) -> str:
    r"""Escape a command line for \texttt so that it survives copy and paste from the PDF.

    ``\_`` is drawn as a rule, which a PDF reader copies as a space: the typewriter font's own
    underscore glyph (``\char95``) is used instead; ``-{}`` keeps ``--`` two hyphens.
    """
    return r"\texttt{" + tex_text(s).replace("-", "-{}").replace(r"\_", r"\char95{}") + "}"


_MD_SPECIAL = re.compile(r"([\\`*_<>\[\]|])")


def md_text(s: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(s))


def md_prose(s: str) -> str:
    """Prose for GitHub Markdown: ``$...$`` spans kept as GitHub renders math, the rest escaped."""
    return "".join(f"${t}$" if math_ else md_text(t.replace(r"\$", "$")) for math_, t in split_math(s))
