"""The renderer: every claim as LaTeX and Markdown, printed from SymPy in the notes' notation.

The notation tests pin the exact strings, and each shows that SymPy's default printer would
fail them (so the assertion can fail).  The key derivations (the 4-layer chain's dC/db1, the
softmax Jacobian) are derived here with ``sympy.diff`` / ``Matrix.jacobian`` and rendered;
the catalogue's own ``chain.grad_b1`` and ``softmax.jacobian`` are checked when registered.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import sympy as sp

import gradcheck
from gradcheck import Claim, ClaimResult, Derivation, Finding, Settings, Step, render
from gradcheck.symbolic import printing, sigma

CLAIMS = gradcheck.registry()


def _balanced(tex: str) -> bool:
    plain = tex.replace("\\\\", " ").replace(r"\{", "").replace(r"\}", "")  # row breaks, then escaped braces
    return plain.count("{") == plain.count("}") and tex.count(r"\left") == tex.count(r"\right")


# --- every registered claim --------------------------------------------------------------


@pytest.mark.parametrize("claim_id", sorted(CLAIMS))
def test_every_registered_claim_renders_to_latex_and_markdown(claim_id):
    claim = CLAIMS[claim_id]
    tex = claim.latex()
    assert tex.endswith(rf"\label{{claim:{claim_id}}}")
    assert _balanced(tex), tex
    steps = claim.derivation().steps
    if steps:
        body = claim.latex(steps=True)
        assert body.endswith(rf"\label{{claim:{claim_id}:steps}}")
        # one aligned line per step: every line but the last ends in \notag \\
        assert body.count(r"\notag \\") == len(steps) - 1
        assert _balanced(body), body
    md = claim.markdown()
    assert md.startswith(f"### `{claim_id}`")
    assert "$$" in md and r"\label" not in md
    for i in range(1, len(steps) + 1):
        assert f"\n{i}. $" in md


# --- the notes' notation -----------------------------------------------------------------

z, z1 = sp.symbols("z z_1", real=True)


def test_a_derivative_of_the_generic_sigma_is_primed_not_a_d_by_dxi_fraction():
    at_point = sp.diff(sigma(z1 * 2 + 1), z1).args[1]  # Subs(Derivative(sigma(_xi), _xi), _xi, 2 z_1 + 1)
    assert isinstance(at_point, sp.Subs)
    xi = sp.Dummy("xi")
    subs = sp.Subs(sp.Derivative(sigma(xi), xi), xi, z1)
    assert printing.latex(subs) == r"\sigma'(z_{1})"
    assert printing.latex(sp.Derivative(sigma(z), z)) == r"\sigma'(z)"
    assert printing.latex(sp.diff(sigma(z), z, 2)) == r"\sigma''(z)"
    assert printing.latex(at_point) == r"\sigma'(2 z_{1} + 1)"
    # what SymPy prints by default, and what the assertion above rejects
    assert sp.latex(subs) != printing.latex(subs) and r"\frac{d}{d \xi" in sp.latex(subs)


def test_symbols_render_as_in_the_notes():
    Sigma = sp.Function("Sigma")
    zl = sp.Symbol("z^l")
    assert printing.latex(sp.diff(Sigma(zl), zl)) == r"\Sigma'(z^{l})"
    assert printing.latex(sp.Symbol("delta^l")) == r"\delta^{l}"
    assert printing.latex(sp.Symbol("w_j") * sp.Symbol("a_j") + sp.Symbol("b_j")) == r"a_{j} w_{j} + b_{j}"
    assert printing.latex(sigma(sp.Symbol("z_j"))) == r"\sigma(z_{j})"
    assert printing.latex(sp.Derivative(sp.tanh(z), z)) == r"\tanh'(z)"


def test_entries_of_a_subscripted_matrix_print_as_valid_latex_not_a_double_subscript():
    from gradcheck.symbolic import array_symbols

    W1 = array_symbols("W_1", (2, 2))
    assert printing.latex(W1[0, 1]) == "{W_{1}}_{0,1}"
    assert sp.latex(W1[0, 1]) == "W_1_{0,1}"  # what SymPy prints: a double subscript, a LaTeX error
    assert printing.latex(sp.Symbol("h_{1,0}")) == "h_{1,0}"
    raw = r"\left\|\prod_{i} c\,Q_i\right\|"  # already LaTeX: left alone
    assert printing.latex(sp.Symbol(raw)) == raw


def test_a_cost_and_a_function_of_several_arguments_get_partial_derivatives():
    C = sp.Function("C")
    a4, y = sp.symbols("a_4 y")
    xi = sp.Dummy("xi")
    assert printing.latex(sp.Subs(sp.Derivative(C(xi), xi), xi, a4)) == r"\frac{\partial C}{\partial a_{4}}"
    assert printing.latex(sp.Derivative(C(a4), a4)) == r"\frac{\partial C}{\partial a_{4}}"
    assert printing.latex(sp.diff(C(a4, y), a4, y)) == r"\frac{\partial^{2} C}{\partial a_{4} \partial y}"
    assert printing.latex(sp.Derivative(sp.Symbol("C"), sp.Symbol("w"))) == r"\frac{\partial C}{\partial w}"


def _chain_grad_b1(depth: int):
    """dC/db1 of the one-neuron chain, by sympy.diff of the nested network, in z_j / a_j names."""
    C = sp.Function("C")
    w = sp.symbols(f"w_1:{depth + 1}", real=True)
    b = sp.symbols(f"b_1:{depth + 1}", real=True)
    zs = sp.symbols(f"z_1:{depth + 1}", real=True)
    a_names = sp.symbols(f"a_0:{depth + 1}", real=True)
    a = a_names[0]
    nested = []
    for j in range(depth):
        nested.append(w[j] * a + b[j])
        a = sigma(nested[-1])
    grad = sp.diff(C(a), b[0])
    # name the intermediate quantities, innermost first: w_j a_{j-1} + b_j -> z_j, sigma(z_j) -> a_j
    prev = a_names[0]
    for j in range(depth):
        grad = grad.xreplace({w[j] * prev + b[j]: zs[j]}) if j else grad.xreplace({nested[0]: zs[0]})
        grad = grad.xreplace({sigma(zs[j]): a_names[j + 1]})
        prev = a_names[j + 1]
    return grad


def test_chain_rule_product_for_four_layers_prints_per_layer_factors_in_order():
    grad = _chain_grad_b1(4)
    expected = (
        r"\sigma'(z_{1}) w_{2} \sigma'(z_{2}) w_{3} \sigma'(z_{3}) w_{4} \sigma'(z_{4}) "
        r"\frac{\partial C}{\partial a_{4}}"
    )
    assert printing.latex(grad) == expected
    # SymPy's default printing of the same object is not the notes' product
    assert sp.latex(grad) != expected and r"\sigma'(z_{1})" not in sp.latex(grad)
    # a chain with a layer missing does not print as the 4-layer product
    assert printing.latex(_chain_grad_b1(3)) != expected


def test_softmax_jacobian_derived_by_sympy_prints_as_y_i_times_delta_ij_minus_y_j():
    n = 3
    a = sp.Matrix(sp.symbols(f"a_0:{n}", real=True))
    y = sp.symbols(f"y_0:{n}", positive=True)
    S = sp.Symbol("S", positive=True)
    soft = sp.Matrix([sp.exp(a[i]) / sum(sp.exp(a[k]) for k in range(n)) for i in range(n)])
    jac = soft.jacobian(a)
    # name softmax's outputs: exp(a_k) = y_k S with S = sum_k exp(a_k) (S cancels), then use
    # sum_k y_k = 1: the full sum is 1 and the sum of the others is 1 - y_i
    ones = {sum(y): 1, **{sum(y) - y[i]: 1 - y[i] for i in range(n)}}
    named = jac.applyfunc(lambda e: sp.factor(e.subs({sp.exp(a[k]): y[k] * S for k in range(n)})).subs(ones))
    assert not any(e.has(S) or e.has(*a) for e in named)
    tex = printing.latex(named)
    # the note's y_i (1 - y_j) on the diagonal, - y_i y_j off it: y_i (delta_ij - y_j)
    assert tex == (
        r"\left(\begin{matrix}y_{0} \left(1 - y_{0}\right) & - y_{0} y_{1} & - y_{0} y_{2}\\"
        r"- y_{0} y_{1} & y_{1} \left(1 - y_{1}\right) & - y_{1} y_{2}\\"
        r"- y_{0} y_{2} & - y_{1} y_{2} & y_{2} \left(1 - y_{2}\right)\end{matrix}\right)"
    )


def test_key_claims_of_the_catalogue_contain_their_factors():
    checked = 0
    if "softmax.jacobian" in CLAIMS:
        tex = CLAIMS["softmax.jacobian"].latex()
        for factor in ("y_{i}", "y_{j}", r"\delta_{"):
            assert factor in tex, (factor, tex)
        checked += 1
    if "chain.grad_b1" in CLAIMS:
        claim = CLAIMS["chain.grad_b1"]
        tex = claim.latex() + claim.latex(steps=True)
        factors = [
            r"\sigma'(z_{1})",
            "w_{2}",
            r"\sigma'(z_{2})",
            "w_{3}",
            r"\sigma'(z_{3})",
            "w_{4}",
            r"\sigma'(z_{4})",
            "a_{4}}",
        ]
        for factor in factors:
            assert factor in tex, (factor, tex)
        checked += 1
    if not checked:
        pytest.skip(
            "neither softmax.jacobian nor chain.grad_b1 is registered yet; the renderer's own "
            "chain and softmax tests above cover the notation"
        )


# --- layout ------------------------------------------------------------------------------


def _demo(statement, steps=(), derive=None, cid="demo.render"):
    return Claim(
        id=cid,
        title="demo: <x> & 50%",
        seeds=("000",),
        expected=("proved",),
        derive=derive or (lambda: Derivation(statement=statement, steps=list(steps))),
        verify=lambda d, s: [],
        statement="a_j <= 1 & so on",
    )


def test_several_relations_become_one_aligned_block_with_one_label():
    x = sp.Symbol("x")
    c = _demo([sp.Eq(x, 1, evaluate=False), sp.Le(x, 2, evaluate=False)])
    tex = c.latex()
    assert tex == "\\begin{aligned}\nx &= 1 \\\\\nx &\\leq 2\n\\end{aligned}\n\\label{claim:demo.render}"


def test_step_notes_are_escaped_prose_and_each_step_is_one_aligned_line():
    x = sp.Symbol("x")
    c = _demo(sp.Eq(x, 1, evaluate=False), [Step(x, sp.Integer(1), "50% of a_j & {b}"), Step(x, 2 * x - x, "")])
    body = c.latex(steps=True)
    # the ASCII a_j of the note is typeset as math; the rest is escaped prose
    assert body == (
        "\\intertext{50\\% of $a_{j}$ \\& \\{b\\}}\nx &= 1 \\notag \\\\\nx &= x \\label{claim:demo.render:steps}"
    )
    md = c.markdown()
    assert "1. $x = 1$ (50% of $a_{j}$ & {b})" in md and "2. $x = x$" in md
    assert "demo: \\<x\\> & 50%" in md


def test_tex_text_escapes_every_special_character():
    assert printing.tex_text("a_b & c% $d$ #e {f} ~ ^ \\ <|>") == (
        r"a\_b \& c\% \$d\$ \#e \{f\} \~{} \^{} \textbackslash{} $<$$|$$>$"
    )
    assert printing.tex_text("σ′ ≤ ¼") == r"$\sigma$' $\leq$ \texttt{U+00BC}"


# --- bad input ---------------------------------------------------------------------------


def test_unknown_claim_id_is_rejected_with_its_name():
    with pytest.raises(KeyError, match="no.such"):
        render.claim_latex("no.such")
    with pytest.raises(TypeError, match="claim must be a Claim"):
        render.claim_latex(42)


def test_the_printer_takes_any_object_shaped_like_a_claim_and_names_what_is_missing():
    x = sp.Symbol("x")

    class Shaped:  # not a catalogue Claim: the printer sits below the catalogue
        id, title, statement, seeds, expected = "demo.shaped", "shaped", "", ("x.md",), ("proved",)

        def derivation(self):
            return Derivation(sp.Eq(x, 1, evaluate=False))

    assert printing.claim_latex(Shaped()) == "x = 1\n\\label{claim:demo.shaped}"
    assert printing.claim_markdown(Shaped()).startswith("### `demo.shaped`: shaped")
    with pytest.raises(TypeError, match=r"claim must be a Claim .* got str without id, "):
        printing.claim_latex("demo.shaped")  # ids are resolved above the catalogue: render.claim_latex


def test_unknown_parameter_is_rejected_before_deriving():
    calls = []
    c = _demo(None, derive=lambda: calls.append(1) or Derivation(sp.Eq(sp.Symbol("x"), 1, evaluate=False)))
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['depth'\]"):
        c.latex(depth=4)
    assert not calls


def test_a_statement_that_evaluated_to_a_bool_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="evaluate=False"):
        _demo(sp.Gt(2, 1)).latex()
    with pytest.raises(ValueError, match="evaluate=False"):
        _demo([sp.Eq(sp.Symbol("x"), 1, evaluate=False), sp.true]).latex()
    with pytest.raises(TypeError, match="never typed in"):
        _demo(r"\sigma'(z) = 1").latex()
    with pytest.raises(ValueError, match="statement is empty"):
        _demo([]).latex()
    with pytest.raises(TypeError, match="Python bool"):
        printing.latex(True)


def test_steps_of_a_claim_without_steps_and_non_step_entries_are_rejected():
    x = sp.Symbol("x")
    with pytest.raises(ValueError, match="no steps"):
        _demo(sp.Eq(x, 1, evaluate=False)).latex(steps=True)
    with pytest.raises(TypeError, match="must be Step objects"):
        _demo(sp.Eq(x, 1, evaluate=False), [(x, 1)]).latex(steps=True)
    with pytest.raises(TypeError, match="must return a Derivation"):
        _demo(None, derive=lambda: sp.Eq(x, 1)).latex()


def test_a_claim_id_that_is_no_latex_label_is_rejected():
    c = _demo(sp.Eq(sp.Symbol("x"), 1, evaluate=False), cid="Demo.Bad Id")
    with pytest.raises(ValueError, match="cannot be a LaTeX label"):
        c.latex()


# --- the JSON record ---------------------------------------------------------------------


def test_the_json_record_is_strict_json_with_what_was_checked():
    c = _demo(sp.Eq(sp.Symbol("x"), 1, evaluate=False))
    findings = [
        Finding(
            "refuted",
            True,
            "naive softmax overflows",
            "hypothesis (shrunk)",
            counterexample=np.array([710.0, np.inf]),
            record={"examples": 200, "seed": 3, "dtype": "float64"},
        ),
        Finding(
            "measured",
            True,
            "ratio",
            "jax",
            figure={"ratio": float("nan"), "n": np.int64(4)},
            record={"dtype": "float32", "tolerance": {"rtol": 1e-4, "atol": 1e-6}, "examples": 10},
        ),
    ]
    result = ClaimResult(c, findings, 1.25, Settings(max_examples=200, seed=3, profile="default"))
    rec = render.result_record(result, date="2025-01-01T00:00:00+00:00", packages={"jax": "x"})
    text = render.results_document([rec], {"date": rec["date"]})
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    r = back["claims"][0]
    assert r["id"] == "demo.render" and r["expected"] == ["proved"] and r["reached"] == ["refuted", "measured"]
    assert r["holds"] is False  # reached != expected
    assert r["counterexample"] == [710.0, "inf"] and r["figure"] == {"ratio": "nan", "n": 4}
    assert r["dtype"] == ["float32", "float64"] and r["examples"] == 210 and r["seed"] == 3
    assert r["tolerance"] == [{"dtype": "float32", "rtol": 1e-4, "atol": 1e-6}]
    assert r["command"] == "gradcheck verify demo.render --seed 3 --profile default"
    assert r["packages"] == {"jax": "x"} and r["date"].startswith("2025")
    with pytest.raises(TypeError, match="ClaimResult"):
        render.result_record(rec)
    assert not math.isnan(r["seconds"])


def test_the_verification_record_names_dtype_tolerance_examples_seed_and_command():
    c = _demo(sp.Eq(sp.Symbol("x"), 1, evaluate=False))
    f = Finding(
        "verified",
        True,
        "agree",
        "gradcheck.check",
        record={"dtype": "float64", "tolerance": {"rtol": 1e-7, "atol": 1e-10}, "examples": 260, "seed": 0},
    )
    rec = render.result_record(ClaimResult(c, [f], 0.5, Settings()), packages={})
    md = render.write_verification(render.MarkdownWriter(), rec)
    assert "float64, rtol 1e-07, atol 1e-10, 260 examples, seed 0" in md
    assert "gradcheck verify demo.render --seed 0 --profile default" in md
    tex = render.write_verification(render.LatexWriter(), rec)
    assert r"\texttt{gradcheck verify demo.render -{}-{}seed 0 -{}-{}profile default}" in tex
    failed = render.result_record(
        ClaimResult(c, [], 0.1, Settings(), error="Traceback\nZeroDivisionError: x"), packages={}
    )
    tex = render.write_verification(render.LatexWriter(), failed)
    assert re.search(r"reached: none; \\textbf\{DOES NOT HOLD\}", tex)
    assert r"The claim's code raised: \texttt{ZeroDivisionError: x}." in tex


def test_infinities_render_as_infty_not_as_text():
    import sympy as sp

    from gradcheck.symbolic.printing import latex

    assert latex(sp.Interval(-sp.oo, 0)) == r"\left(-\infty, 0\right]"
    assert "Infinity" not in latex(sp.Symbol("x") + sp.oo)


# --- math as math: titles, statements, notes and records ----------------------------------


def test_a_known_claims_title_statement_and_step_render_as_latex():
    from gradcheck.symbolic.printing import tex_heading, tex_prose

    c = CLAIMS["chain.exploding"]
    assert tex_heading(c.title) == (
        r"\texorpdfstring{$w_{j} = 100$ with $z_{j} = 0$ makes the gradient explode as "
        r"$25^{L}$}{w\_j = 100 with z\_j = 0 makes the gradient explode as 25\^{}L}"
    )
    assert tex_prose(c.statement).startswith(
        r"with $w_{j} = 100$ and $b_{j} = -100 a_{j-1}$, $z_{j} = 0$ and "
        r"$w_{j} \sigma'(z_{j}) = 25$ in every layer"
    )
    steps = c.latex(steps=True)
    # the factor is not swallowed by a subscript (it printed as w_{j \sigma'(z_j)})
    assert "\nw_j \\sigma'(z_j) &= 25 \\notag" in steps and r"w_{j \sigma" not in steps
    assert r"\intertext{100 $\sigma'(0) = 100/4 = 25$}" in steps


def test_ascii_maths_in_prose_is_typeset_and_identifiers_are_left_alone():
    assert printing.ascii_math("dC/db_1 = 25^(L-1) (1/2 - y) / 4 at L = 4: grows as 25^L.") == (
        r"$\partial C/\partial b_{1} = 25^{L-1}$ (1/2 - y) / 4 at L = 4: grows as $25^{L}$."
    )
    assert printing.ascii_math("w_j sigma'(z_j) = 100 sigma'(0) = 25") == (
        r"$w_{j} \sigma'(z_{j}) = 100 \sigma'(0) = 25$"
    )
    plain = "the map_rows call over chain.grad_b1 (float64, seed 0)"
    assert printing.ascii_math(plain) == plain
    # prose written as LaTeX passes through; the Markdown keeps $...$ for GitHub and escapes the rest
    assert printing.tex_prose(r"a_b $x_{1}$ & c") == r"$a_{b}$ $x_{1}$ \& c"
    assert printing.md_prose(r"map_rows $\sigma'(z_{j})$") == r"map\_rows $\sigma'(z_{j})$"


def test_a_topics_intro_is_its_package_docstring_also_for_claims_defined_in_a_submodule():
    import importlib
    import inspect

    for cid, claim in CLAIMS.items():  # chain.window is defined in proofs.chain._window
        doc = inspect.getdoc(importlib.import_module(f"proofs.{claim.topic}"))
        assert render.topic_intro(cid) == doc.split("\n\n", 1)[0].replace("\n", " ").strip(), cid
