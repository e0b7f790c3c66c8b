r"""The LaTeX of titles and statements as Unicode text a terminal can read.

``$\partial C/\partial b_{1}$`` becomes ``∂C/∂b₁``, ``$\sigma'(z) \leq 1/4$`` becomes
``σ'(z) ≤ 1/4`` and ``$\sum_{i} y_{i} = 1$`` becomes ``Σᵢ yᵢ = 1``.  LaTeX output (``gradcheck
latex``, report.tex, report.md) is untouched: this is only for what is printed on a console.

The macros are pylatexenc's (:mod:`pylatexenc.latex2text`, the known-good LaTeX-to-Unicode table),
with a few of its choices changed for inline maths; three things it does not do are done here:

* subscripts and superscripts become Unicode sub/superscript characters (``b_{1}`` -> ``b₁``,
  ``25^{L-1}`` -> ``25ᴸ⁻¹``) where every character has one, else a readable ``_(1,i)`` /
  ``^(1/4)`` (``_L`` for a single character) instead of pylatexenc's ``b_1``, ``3^1/4``;
* a fraction whose numerator or denominator is more than one term is parenthesised
  (``\frac{1 + x}{2}`` -> ``(1 + x)/2``; pylatexenc writes ``1 + x/2``);
* a space after a macro is kept (``\max \mathrm{float}`` -> ``max float``, not ``maxfloat``), as
  are the spaces around relations (``≤``, ``↦``), and runs of spaces are collapsed.

Prose between the ``$...$`` spans is split as :func:`~gradcheck.symbolic._prose.split_math` does
(its ASCII maths, ``sigma'(z_j)``, ``dC/db_1``, is typeset too), so that the terminal, the PDF
and the Markdown agree on what is maths.
"""

from __future__ import annotations

import re

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

from ._prose import plain_prose, split_math

__all__ = ["unicode_math", "unicode_prose", "terminal_prose"]


def _table(plain: str, scripts: str) -> dict[str, str]:
    if len(plain) != len(scripts):
        raise AssertionError("the two strings of a script table must pair up")
    return dict(zip(plain, scripts))


#: Every character that has a Unicode subscript / superscript form (pylatexenc writes \epsilon ϵ).
_SUB = _table("0123456789+-−=()aehijklmnoprstuvxβγρφχ", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ")
_SUP = _table(
    "0123456789+-−=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWαβγδεϵθιφϕχ",
    "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵅᵝᵞᵟᵋᵋᶿᶥᶲᶲᵡ",
)

#: Private-use characters stand for the scripts while pylatexenc converts the rest.
_HOLD = 0xE000


def _script(text: str, table: dict[str, str], mark: str) -> str:
    """``text`` in sub/superscript characters, or ``_x`` / ``_(text)`` when one has none."""
    body = text.replace(" ", "")
    if not body:
        return ""
    if all(ch in table for ch in body):
        return "".join(table[ch] for ch in body)
    return mark + (body if len(body) == 1 else f"({text.strip()})")


def _group_end(s: str, i: int) -> int:
    """The index after the ``}`` that closes the ``{`` at ``s[i]`` (len(s) if it is never closed)."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "\\":
            continue
        if s[j] == "{" and (j == 0 or s[j - 1] != "\\"):
            depth += 1
        elif s[j] == "}" and s[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(s)


def _hold_scripts(tex: str, held: list[str]) -> str:
    """``tex`` with each ``_x``, ``_{...}``, ``^x``, ``^{...}`` converted (recursively) into
    ``held`` and replaced by the private-use character that stands for it."""
    out, i = [], 0
    while i < len(tex):
        ch = tex[i]
        if ch not in "_^" or (i and tex[i - 1] == "\\"):
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < len(tex) and tex[j] == " ":
            j += 1
        if j >= len(tex):
            out.append(tex[i:])
            break
        if tex[j] == "{":
            end = _group_end(tex, j)
            arg = tex[j + 1 : end - 1] if tex[end - 1 : end] == "}" else tex[j + 1 : end]
        elif tex[j] == "\\":
            m = re.match(r"\\(?:[A-Za-z]+|.)", tex[j:])
            end = j + (m.end() if m else 1)
            arg = tex[j:end]
        else:
            end, arg = j + 1, tex[j]
        table, mark = (_SUB, "_") if ch == "_" else (_SUP, "^")
        held.append(_script(unicode_math(arg), table, mark))
        out.append(chr(_HOLD + len(held) - 1))
        i = end
    return "".join(out)


def _top_level_compound(text: str) -> bool:
    """Whether ``text`` has a space or an operator outside brackets (``1 + x``, ``a/b``)."""
    depth = 0
    for ch in text.strip():
        depth += (ch in "([{") - (ch in ")]}")
        if depth == 0 and ch in " +-−/=<>,±×·":
            return True
    return False


def _args(n, l2tobj, count: int) -> list[str]:
    """The macro's first ``count`` arguments as text (``∂C``, not ``∂ C``), parenthesised when compound."""
    args = list(n.nodeargd.argnlist if n.nodeargd else [])[:count]
    texts = [re.sub(r"∂\s+", "∂", l2tobj.nodelist_to_text([a])).strip() if a is not None else "" for a in args]
    texts += [""] * (count - len(texts))
    return [f"({t})" if _top_level_compound(t) else t for t in texts]


def _frac(n, l2tobj) -> str:
    return "/".join(_args(n, l2tobj, 2))


def _sqrt(n, l2tobj) -> str:
    index, radicand = _args(n, l2tobj, 2)  # \sqrt[3]{x}: the optional argument comes first
    return (_script(index, _SUP, "^") if index else "") + "√" + radicand


def _context():
    db = get_default_latex_context_db()
    spaced = {
        "leq": "≤", "geq": "≥", "le": "≤", "ge": "≥", "neq": "≠", "approx": "≈", "mapsto": "↦",
        "to": "→", "times": "×", "cdot": "·", "pm": "±", "in": "∈",
    }  # fmt: skip
    macros = [MacroTextSpec(name, f" {sym} ") for name, sym in spaced.items()]
    macros += [
        MacroTextSpec("frac", simplify_repl=_frac),
        MacroTextSpec("sqrt", simplify_repl=_sqrt),
        MacroTextSpec("sum", "Σ"),  # Greek capitals, as inline text writes them (not ∑ ∏)
        MacroTextSpec("prod", "Π"),
        MacroTextSpec("|", "‖"),
        MacroTextSpec("mathbf", "%s"),  # 1[z > 0]: the digit, not MATHEMATICAL BOLD DIGIT ONE
        MacroTextSpec("bar", "%s\u0304"),  # a combining macron over its argument
    ]
    macros += [MacroTextSpec(name, " ") for name in (",", ";", ":", "quad", "qquad")]
    macros.append(MacroTextSpec("!", ""))  # a negative thin space
    macros += [MacroTextSpec(name, "") for name in ("Big", "big", "Bigg", "bigg", "label")]
    db.add_context_category("gradcheck-terminal", macros=macros, prepend=True)
    return db


_CONVERTER = LatexNodes2Text(latex_context=_context(), math_mode="text")
#: a macro name and the space after it: ``\max \mathrm`` keeps its space as ``\max{} \mathrm``
_MACRO_SPACE = re.compile(r"(\\[A-Za-z]+)(\s+)(?=[^\s{}^_'])")


def unicode_math(tex: str) -> str:
    r"""LaTeX maths (the inside of a ``$...$``) as one line of Unicode text.

    ``\frac{\partial C}{\partial b_{1}}`` -> ``∂C/∂b₁``; ``\sigma'(z) \leq 1/4`` -> ``σ'(z) ≤ 1/4``.
    """
    held: list[str] = []
    body = _hold_scripts(_MACRO_SPACE.sub(r"\1{}\2", tex), held)
    text = _CONVERTER.latex_to_text(body)
    if held:
        text = re.sub(f"[{chr(_HOLD)}-{chr(_HOLD + len(held) - 1)}]", lambda m: held[ord(m.group()) - _HOLD], text)
    text = re.sub(r"∂\s+(?=\S)", "∂", text)  # ∂C, as written: \partial C
    return re.sub(r"\s+", " ", text).strip()


def unicode_prose(s: str) -> str:
    r"""Prose with its maths (``$...$`` spans and ASCII maths) as Unicode text.

    ``$\partial C/\partial b_{1}$ of the one-neuron chain`` -> ``∂C/∂b₁ of the one-neuron chain``.
    LaTeX that cannot be converted is flattened to ASCII as :func:`plain_prose` does, never raised.
    """
    try:
        return "".join(unicode_math(t) if math_ else t.replace(r"\$", "$") for math_, t in split_math(s))
    except Exception:  # a malformed title is shown, not fatal: pylatexenc's errors are not all documented
        return plain_prose(s)


def terminal_prose(s: str, encoding: str | None) -> str:
    """:func:`unicode_prose` where ``encoding`` can write it, else :func:`plain_prose` (ASCII)."""
    text = unicode_prose(s)
    try:
        text.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return plain_prose(s)
    return text
