"""Bad input to ``gradcheck.check``: a clear error naming the argument, before any long work.

"Before any long work" is checked by counting calls: argument errors are raised before ``fn``
or the reference is ever called, and reference errors before ``fn`` is differentiated or run
on data (it may be traced once, abstractly, to learn its output shape).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import gradcheck


class Spy:
    """A callable that counts its calls, wrapping ``fn``."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0
        functools.update_wrapper(self, fn)  # keeps fn's signature visible to check

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


def sigmoid_ref(x):
    return 1 / (1 + sp.exp(-x))


def softmax_ref(a):
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def spies():
    return Spy(jax.nn.sigmoid), Spy(sigmoid_ref)


GOOD = dict(shapes=[()], domain=(-5.0, 5.0), max_examples=10)

# (keyword overrides, the argument the message must name)
ARGUMENT_ERRORS = {
    "shape_of_rank_3": ({"shapes": [(2, 3, 4)]}, "shapes"),
    "shape_with_a_zero_size": ({"shapes": [(0,)]}, "shapes"),
    "shape_not_a_tuple": ({"shapes": ["3"]}, "shapes"),
    "one_shape_not_in_a_list": ({"shapes": (3,)}, "shapes"),
    "no_shapes": ({"shapes": []}, "shapes"),
    "domain_lo_equal_hi": ({"domain": (1.0, 1.0)}, "domain"),
    "domain_lo_above_hi": ({"domain": (2.0, 1.0)}, "domain"),
    "domain_minus_inf": ({"domain": (-math.inf, 1.0)}, "domain"),
    "domain_plus_inf": ({"domain": (0.0, math.inf)}, "domain"),
    "domain_nan": ({"domain": (math.nan, 1.0)}, "domain"),
    "domain_not_a_pair": ({"domain": (1.0, 2.0, 3.0)}, "domain"),
    "domain_beyond_float32": ({"domain": (-1e39, 1e39), "dtype": "float32"}, "domain"),
    "dtype_float16": ({"dtype": "float16"}, "dtype"),
    "dtype_int32": ({"dtype": "int32"}, "dtype"),
    "dtype_bogus": ({"dtype": "bogus"}, "dtype"),
    "dtype_jnp_int32": ({"dtype": jnp.int32}, "dtype"),
    "max_examples_0": ({"max_examples": 0}, "max_examples"),
    "max_examples_negative": ({"max_examples": -5}, "max_examples"),
    "max_examples_not_an_integer": ({"max_examples": 2.5}, "max_examples"),
    "order_3": ({"order": 3}, "order"),
    "order_0": ({"order": 0}, "order"),
    "rtol_negative": ({"rtol": -1.0}, "rtol"),
    "atol_nan": ({"atol": math.nan}, "atol"),
}


@pytest.mark.parametrize("name", list(ARGUMENT_ERRORS))
def test_bad_argument_is_named_before_fn_or_reference_is_called(name):
    overrides, argument = ARGUMENT_ERRORS[name]
    fn, ref = spies()
    with pytest.raises((ValueError, TypeError), match=argument):
        gradcheck.check(fn, ref, **{**GOOD, **overrides})
    assert fn.calls == 0 and ref.calls == 0


def test_a_domain_per_argument_must_have_one_pair_per_argument():
    with pytest.raises(ValueError, match="domain"):
        gradcheck.check(lambda x, y: x * y, lambda x, y: x * y, shapes=[(), ()], domain=[(-1.0, 1.0)] * 3)


def test_a_bad_pair_in_a_domain_per_argument_is_named_by_its_index():
    with pytest.raises(ValueError, match=r"domain\[1\]"):
        gradcheck.check(lambda x, y: x * y, lambda x, y: x * y, shapes=[(), ()], domain=[(-1.0, 1.0), (3.0, 2.0)])


# --------------------------------------------------------------------------------------------
# shapes vs fn, and the reference
# --------------------------------------------------------------------------------------------
def two_args(x, y):
    return x * y


def test_fewer_shapes_than_fn_takes_arguments_names_fn_and_shapes():
    fn = Spy(two_args)
    with pytest.raises(ValueError, match=r"shapes gives 1 argument shape.*\[\(\)\].*fn cannot be called with 1"):
        gradcheck.check(fn, lambda x: x, shapes=[()], max_examples=10)
    assert fn.calls == 0


def test_more_shapes_than_fn_takes_arguments_names_fn_and_shapes():
    with pytest.raises(ValueError, match=r"shapes gives 2 argument shape.*fn cannot be called with 2"):
        gradcheck.check(jnp.sin, lambda x, y: x, shapes=[(), ()], max_examples=10)


def test_reference_of_the_wrong_arity_is_named():
    fn = Spy(jnp.sin)
    with pytest.raises(ValueError, match=r"reference must take 1 argument"):
        gradcheck.check(fn, lambda x, y: sp.sin(x), shapes=[()], max_examples=10)
    assert fn.calls <= 1  # traced once for its output shape at most, never run on data


@pytest.mark.parametrize(
    "ref",
    [lambda a: sum(a), lambda a: sp.Matrix([[a[0], a[1]], [a[1], a[0]]]), lambda a: sp.Matrix(a[:2])],
    ids=["scalar_for_a_vector", "matrix_for_a_vector", "vector_too_short"],
)
def test_reference_with_the_wrong_output_shape_is_named(ref):
    fn = Spy(jax.nn.softmax)
    with pytest.raises(ValueError, match=r"reference must return the shape of fn's output"):
        gradcheck.check(fn, ref, shapes=[(3,)], max_examples=10)
    assert fn.calls <= 1


@pytest.mark.parametrize(
    "ref",
    [lambda x: sp.log(x), lambda x: x[5], lambda x: 1 / x],
    ids=["log_of_a_matrix", "index_beyond_the_vector", "one_over_a_matrix"],
)
def test_reference_that_fails_on_inputs_of_the_given_shapes_is_named(ref):
    # a reference written for scalars, given a (2,) vector: the error must say it was the reference
    with pytest.raises((ValueError, TypeError), match=r"reference"):
        gradcheck.check(jnp.log, ref, shapes=[(2,)], domain=(0.1, 1.0), max_examples=10)


def test_reference_with_free_symbols_names_them():
    a = sp.Symbol("a")
    fn = Spy(jnp.sin)
    with pytest.raises(ValueError, match=r"reference has free symbols.*\ba\b"):
        gradcheck.check(fn, lambda x: sp.sin(a * x), shapes=[()], max_examples=10)
    assert fn.calls <= 1


def test_reference_returning_a_string_is_rejected_not_parsed():
    with pytest.raises(TypeError, match=r"reference must return a SymPy expression"):
        gradcheck.check(jnp.sin, lambda x: "sin(x0)", shapes=[()], max_examples=10)


def test_reference_that_is_not_callable_is_named():
    with pytest.raises(TypeError, match=r"reference"):
        gradcheck.check(jnp.sin, sp.sin(sp.Symbol("x")), shapes=[()], max_examples=10)


# --------------------------------------------------------------------------------------------
# fn that JAX cannot trace
# --------------------------------------------------------------------------------------------
def calls_float_on_its_input(x):
    return jnp.sin(x) * float(x)


def branches_on_a_value(x):
    if x > 0:
        return x
    return -x


def returns_a_tuple(x):
    return jnp.sin(x), jnp.cos(x)


@pytest.mark.parametrize("fn", [calls_float_on_its_input, branches_on_a_value], ids=["float", "if"])
def test_fn_that_is_not_traceable_is_named_before_the_reference_is_built(fn):
    ref = Spy(sigmoid_ref)
    with pytest.raises(TypeError, match=r"fn is not traceable"):
        gradcheck.check(fn, ref, shapes=[()], max_examples=10)
    assert ref.calls == 0


def test_fn_returning_a_tuple_needs_a_reference_of_the_same_structure():
    # a pytree output is checked leaf by leaf; a reference of another structure is named
    with pytest.raises(ValueError, match=r"reference must return the shape of fn's output: 2 entries"):
        gradcheck.check(returns_a_tuple, sp.sin, shapes=[()], max_examples=10)


def test_fn_that_is_not_callable_is_named():
    with pytest.raises(TypeError, match=r"fn must be a callable"):
        gradcheck.check("sin", sp.sin, shapes=[()], max_examples=10)
