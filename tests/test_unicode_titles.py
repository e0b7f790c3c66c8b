r"""Maths a terminal can read: `gradcheck list` and `gradcheck verify` print the LaTeX of titles and
statements as Unicode text (``∂C/∂b₁``), while `gradcheck latex` and the report's .tex/.md keep it."""

from __future__ import annotations

import io
import sys

import pytest

from gradcheck import Claim, Derivation, Finding, cli
from gradcheck.catalogue import _registry as claims_mod, get
from gradcheck.symbolic._unicode import terminal_prose, unicode_math, unicode_prose

#: What must not reach a terminal: LaTeX source.
RAW = ("$", "\\", "\\frac", "\\partial", "\\sigma", "_{", "^{")


@pytest.fixture
def wide(monkeypatch):
    """A console wide enough that no title is wrapped (the assertions read whole titles)."""
    monkeypatch.setenv("COLUMNS", "400")


def listed(capsys, *argv: str) -> str:
    assert cli.main(["list", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["--statements"]], ids=["titles", "statements"])
def test_list_of_the_whole_catalogue_prints_no_latex(wide, capsys, argv):
    out = listed(capsys, *argv)
    assert "chain.grad_b1" in out and "softmax.sums_to_one" in out
    for raw in RAW:
        assert raw not in out, f"{raw!r} printed by gradcheck list {' '.join(argv)}"


def row(out: str, claim_id: str) -> str:
    return next(line for line in out.splitlines() if f" {claim_id} " in line)


def test_list_shows_the_titles_maths_as_unicode(wide, capsys):
    out = listed(capsys)
    assert "∂C/∂b₁ of the one-neuron chain is a product of one factor per layer" in row(out, "chain.grad_b1")
    assert "∂C/∂b₁ is below 1/16 of ∂C/∂b₃ when all |w| < 1" in row(out, "chain.ratio_b1_b3")
    assert "tanh' exceeds σ' only on |z| ≤ 1.6629" in row(out, "tanh.vs_sigmoid")
    assert "σ' is at most 1/4" in row(out, "sigmoid.max_derivative")
    assert "wⱼ = 100 with zⱼ = 0 makes the gradient explode as 25ᴸ" in row(out, "chain.exploding")
    assert "Gradient descent converges iff α < 2/λ, not iff α < 1" in row(out, "gd.step_size")
    assert "The Jacobian of x ↦ A x is A" in row(out, "linear.jacobian")


def test_list_statements_show_bounds_and_sums_as_unicode(wide, capsys):
    out = listed(capsys, "--statements", "sigmoid", "softmax", "relu.dead_unit", "tanh.vs_sigmoid")
    assert "σ'(z) ≤ 1/4 for every real z" in out
    assert "Σᵢ yᵢ = 1 for every C and every logits a" in out
    assert "∂yᵢ/∂aⱼ = yᵢ (δᵢⱼ - yⱼ)" in out
    # a subscript or superscript without Unicode characters falls back to a readable form
    assert "if h_(1,i) < 0 then ∂g/∂W₁[i, :] = 0" in out
    assert "√3 + √2 3^(1/4)" in out


def test_latex_output_keeps_the_latex(capsys):
    assert cli.main(["latex", "chain.grad_b1"]) == 0
    assert capsys.readouterr().out == (
        r"\frac{\partial C}{\partial b_{1}} = \sigma'(z_{1}) w_{2} \sigma'(z_{2}) w_{3} \sigma'(z_{3}) "
        r"w_{4} \sigma'(z_{4}) \frac{\partial C}{\partial a_{4}}" + "\n\\label{claim:chain.grad_b1}\n"
    )
    assert cli.main(["latex", "sigmoid.max_derivative"]) == 0
    assert r"\sigma'(z) \leq \frac{1}{4}" in capsys.readouterr().out
    # the report's Markdown (and LaTeX) are written from the title as it is
    c = get("chain.grad_b1")
    assert c.title.startswith(r"$\partial C/\partial b_{1}$")
    assert r"### `chain.grad_b1`: $\partial C/\partial b_{1}$ of" in c.markdown()


# --- the converter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tex, text",
    [
        (r"\frac{\partial C}{\partial b_{1}}", "∂C/∂b₁"),
        (r"\frac{\partial C/\partial b_{1}}{\partial C/\partial b_{3}}", "(∂C/∂b₁)/(∂C/∂b₃)"),
        (r"\frac{1 + x}{2}", "(1 + x)/2"),
        (r"\sigma'(z) \leq 1/4", "σ'(z) ≤ 1/4"),
        (r"\sum_{i} y_{i} = 1", "Σᵢ yᵢ = 1"),
        (r"\prod_{k=j+1}^{L} w_{k}", "Πₖ₌ⱼ₊₁ᴸ wₖ"),
        (r"25^{L-1} (a_{L} - y)/4", "25ᴸ⁻¹ (a_L - y)/4"),  # no subscript capital L: a_L
        (r"(W^{l+1})^{T} \Sigma'(z^{L}) \nabla_{a} C", "(Wˡ⁺¹)ᵀ Σ'(zᴸ) ∇ₐ C"),
        (r"c^{\mathrm{depth}}", "cᵈᵉᵖᵗʰ"),
        (r"2/(n_{\mathrm{in}} + n_{\mathrm{out}})", "2/(nᵢₙ + nₒᵤₜ)"),
        (r"\ln(\max \mathrm{float})", "ln(max float)"),
        (r"\|g\| \leq c", "‖g‖ ≤ c"),
        (r"\left\|\frac{\partial C}{\partial b^{l}}\right\|", "‖∂C/∂bˡ‖"),
        (r"\operatorname{diag}(\sigma'(z_{i})) W", "diag(σ'(zᵢ)) W"),
        (r"\sqrt{3} + \sqrt{1 - a} + \sqrt[3]{x}", "√3 + √(1 - a) + ³√x"),
        (r"\alpha \, \partial \mathrm{Loss}/\partial w", "α ∂Loss/∂w"),
        (r"h_{1,i} < 0, \; 3^{1/4}", "h_(1,i) < 0, 3^(1/4)"),
        (r"\lim_{n \to \infty} x_{n}", "lim_(n → ∞) xₙ"),
    ],
)
def test_latex_maths_converts_to_unicode(tex, text):
    assert unicode_math(tex) == text


def test_prose_keeps_its_words_and_converts_its_maths():
    assert unicode_prose(r"$\partial C/\partial b_{1}$ of the chain") == "∂C/∂b₁ of the chain"
    assert unicode_prose(r"costs \$5, and $x_{1}$ too") == "costs $5, and x₁ too"
    # the ASCII maths that split_math finds in prose (as the PDF typesets it), identifiers left alone
    assert unicode_prose("sigma'(z_j) and dC/db_1 in max_examples, float32") == (
        "σ'(zⱼ) and ∂C/∂b₁ in max_examples, float32"
    )
    assert unicode_prose("Derivative of the logistic sigmoid") == "Derivative of the logistic sigmoid"


def test_malformed_latex_is_shown_never_raised():
    for s in [r"$\frac{1}$", r"$a_{$", r"$x^$", "$\ue000_{1}$", r"$\begin{pmatrix} a$"]:
        assert isinstance(unicode_prose(s), str)


def test_an_output_that_cannot_write_unicode_gets_ascii():
    title = r"$\partial C/\partial b_{1}$ of the chain"
    assert terminal_prose(title, "utf-8") == "∂C/∂b₁ of the chain"
    assert terminal_prose(title, "ascii") == "partial C/partial b_1 of the chain"


def test_list_to_an_ascii_stream_falls_back_to_ascii(wide, monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", stream)
    assert cli.main(["list", "chain.grad_b1"]) == 0
    stream.seek(0)
    out = stream.read()
    assert "partial C/partial b_1 of the one-neuron chain" in out and "$" not in out


# --- verify ------------------------------------------------------------------------------


@pytest.fixture
def missing_claim():
    c = claims_mod.register(
        Claim(
            id="demo.unicode_miss",
            title=r"$\partial C/\partial b_{1}$ of a demo chain",
            statement=r"$\sigma'(z) \leq 1/4$ for every real $z$",
            sources=("000",),
            expected=("proved",),
            derive=lambda: Derivation(statement=None),
            verify=lambda d, s: [Finding(None, False, "an identity that did not simplify to 0", "sympy")],
        )
    )
    yield c
    claims_mod._REGISTRY.pop(c.id)


def test_verify_names_a_missed_claim_with_its_title_and_statement_in_unicode(wide, missing_claim, capsys):
    assert cli.main(["verify", "demo.unicode_miss"]) == 1
    out = capsys.readouterr().out
    assert "demo.unicode_miss: ∂C/∂b₁ of a demo chain" in out
    assert "σ'(z) ≤ 1/4 for every real z" in out
    assert "$" not in out and "\\" not in out
