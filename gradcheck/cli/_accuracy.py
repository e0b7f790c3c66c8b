"""``gradcheck accuracy``: the accuracy table of one function, in the spirit of libm's ULP tables
but for derivatives: per quantity (value, first and second derivative), the largest error in
ulps against the mpmath truth, and where it occurs."""

from __future__ import annotations

import importlib


def add_parser(sub) -> None:
    p = sub.add_parser(
        "accuracy",
        help="largest error in ulps of a function's value and derivatives, and where",
        description="Check FN against the SymPy expression REF in x (a scalar function) and print "
        "its accuracy table: for the value and each derivative, the largest error in ulps of the "
        "dtype against the mpmath truth and the input where it occurs.  Example: "
        "gradcheck accuracy jax.nn.softplus 'log(1 + exp(x))' --domain -50 50 --dtype float32",
    )
    p.add_argument("fn", metavar="FN", help="dotted path of a JAX function of one scalar, e.g. jax.nn.softplus")
    p.add_argument("ref", metavar="REF", help="its closed form as a SymPy expression in x, e.g. 'log(1 + exp(x))'")
    p.add_argument("--domain", nargs=2, type=float, default=(-1000.0, 1000.0), metavar=("LO", "HI"))
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--order", type=int, choices=(1, 2), default=2)
    p.add_argument("--examples", type=int, default=1000, help="points in the sweep (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_accuracy)


def _import(path: str):
    mod, _, name = path.rpartition(".")
    if not mod:
        raise ValueError(f"FN must be a dotted path such as jax.nn.softplus, got {path!r}")
    try:
        obj = importlib.import_module(mod)
    except ImportError:
        obj = _import(mod)  # jax.scipy.special.gammaln: a module's attribute of an attribute
    try:
        return getattr(obj, name)
    except AttributeError:
        raise ValueError(f"FN: {mod} has no attribute {name!r}") from None


def cmd_accuracy(args) -> int:
    import sympy as sp

    import gradcheck

    fn = _import(args.fn)
    x = sp.Symbol("x", real=True)
    try:
        expr = sp.sympify(args.ref, locals={"x": x})
    except (sp.SympifyError, SyntaxError, TypeError) as e:
        raise ValueError(f"REF must be a SymPy expression in x, got {args.ref!r}: {e}") from None
    if expr.free_symbols - {x}:
        raise ValueError(f"REF may use only x, got {sorted(map(str, expr.free_symbols))}")
    report = gradcheck.check(
        fn,
        lambda v: expr.subs(x, v),
        shapes=[()],
        domain=tuple(args.domain),
        order=args.order,
        dtype=args.dtype,
        max_examples=args.examples,
        seed=args.seed,
    )
    print(report.accuracy_table())
    print(
        f"verdict: {'ok' if report.ok else 'FAILED'} ({len(report.failures)} failure(s), "
        f"{len(report.accuracy_notes)} accuracy note(s), {len(report.range_limits)} range limit(s))"
    )
    return 0
