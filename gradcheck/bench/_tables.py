"""``gradcheck bench`` results as ``rich`` tables: one renderer per group (:data:`RENDERERS`),
then the targets.  Only reads the JSON-ready result, so a saved ``--json`` file renders too."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from ._chain import RENORM_EVERY

__all__ = ["RENDERERS", "size_sweep_renderables", "tables"]


def _ms(s: float) -> str:
    return f"{s * 1e3:.3g}"


def _gbs(b: float) -> str:
    return f"{b / 1e9:.3g}"


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], left: Sequence[str] = ()) -> Table:
    """A table with ``columns`` right-aligned except those in ``left``, and one line per row."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col, justify="left" if col in left else "right")
    for cells in rows:
        t.add_row(*cells)
    return t


def _softmax(r: dict[str, Any]) -> list:
    cp = r["copy"]
    return [
        _table(
            f"softmax Jacobian, batch of B vectors, {r['dtype']}, output ~{r['output_bytes'] // 2**20} MiB "
            f"into a donated buffer; copy write rate {_gbs(cp['bytes_per_s'])} GB/s",
            ("C", "B", "method", "compile ms", "median ms", "min ms", "GB/s", "of copy", "max |diff|"),
            (
                (
                    str(row["C"]),
                    str(row["B"]),
                    row["method"],
                    _ms(row["compile_s"]),
                    _ms(row["median_s"]),
                    _ms(row["min_s"]),
                    _gbs(row["bytes_per_s"]),
                    f"{row['fraction_of_copy']:.0%}",
                    f"{row['max_abs_diff_vs_jacrev']:.1e}",
                )
                for row in r["rows"]
            ),
            left=("method",),
        )
    ]


def _chain_row(row: dict[str, Any]) -> list[str]:
    d_auto = "-" if row["max_log_diff_vs_autodiff"] is None else f"{row['max_log_diff_vs_autodiff']:.1e}"
    return [
        str(row["L"]),
        _ms(row["sigmoid_pass"]["median_s"]),
        _ms(row["forward_scan"]["median_s"]),
        _ms(row["closed"]["median_s"]),
        _ms(row["log_scan"]["median_s"]),
        _ms(row["autodiff"]["median_s"]),
        f"{row['closed_over_sigmoid']:.2f}",
        f"{row['autodiff_over_closed']:.1f}",
        f"{_ms(row['closed']['compile_s'])}, {_ms(row['autodiff']['compile_s'])}",
        f"{row['autodiff_underflow_fraction']:.0%}",
        f"{d_auto}, {row['max_log_diff_vs_truth']:.1e}",
    ]


def _chain(r: dict[str, Any]) -> list:
    return [
        _table(
            f"dC/db1 of the one-neuron chain, N = {r['N']} draws, {r['dtype']}; closed form = product fused into "
            f"the forward pass, renormalised every {RENORM_EVERY} layers (log-scan: the previous closed form)",
            (
                "L",
                "sigmoid pass ms",
                "forward scan ms",
                "closed ms",
                "log-scan ms",
                "vmap(grad) ms",
                "closed/sigmoid",
                "grad/closed",
                "compile ms (closed, grad)",
                "grad = 0",
                "max |dlog| vs grad, truth",
            ),
            (_chain_row(row) for row in r["rows"]),
        )
    ]


def _check_row(row: dict[str, Any]) -> list[str]:
    verdict = "pass" if row["check_ok"] else "FAIL " + ",".join(sorted(set(row["check_failures"])))
    return [
        row["function"],
        str(row["check_points"]),
        f"{row['check_s']:.2f}",
        f"{row['check_points_per_s']:.0f}",
        verdict,
        str(row["check_grads_points"]),
        f"{row['check_grads_points_per_s']:.0f}",
        str(row["check_grads_flagged"]),
        f"{row['speedup']:.0f}x",
    ]


def _check(r: dict[str, Any]) -> list:
    out = [
        _table(
            f"verification throughput, {r['dtype']}, order {r['order']}: gradcheck.check "
            f"(cold, compile included) vs jax.test_util.check_grads once per point",
            (
                "function",
                "check points",
                "check s",
                "check pts/s",
                "check verdict",
                "check_grads points",
                "check_grads pts/s",
                "check_grads flagged",
                "speed-up",
            ),
            (_check_row(row) for row in r["rows"]),
            left=("function", "check verdict"),
        )
    ]
    if r.get("size_sweep"):
        out.extend(size_sweep_renderables(r["size_sweep"]))
    return out


def _value_cell(row) -> str:
    if row["what"] == "softmax jacobian":
        return f"|diff| {row['value']:.0e}" + ("" if row["ok"] else " NO")
    return f"{row['value']:.6g}" + ("" if row["ok"] else f" (exact {row['expected']:g}): overflow")


def _symbolic(r: dict[str, Any]) -> list:
    ge = r["growth_exponent"]
    return [
        _table(
            "symbolic cost: SymPy derive + lambdify(cse=True), first jitted call apart; "
            + ", ".join(f"{k} ~ size^{v:.2f}" for k, v in ge.items())
            + "; value: chain at w_k = 4 c_k, z = 0 (exact 0.5), softmax |diff| vs closed form",
            ("what", "size", "derive s", "lambdify s", "derive + lambdify s", "first call s", "value (float64)"),
            (
                (
                    row["what"],
                    str(row["size"]),
                    f"{row['derive_s']:.3f}",
                    f"{row['lambdify_s']:.3f}",
                    f"{row['seconds']:.3f}",
                    f"{row['first_call_s']:.3f}",
                    _value_cell(row),
                )
                for row in r["rows"]
            ),
            left=("what",),
        )
    ]


def _models(r: dict[str, Any]) -> list:
    return [
        _table(
            f"models, reference=None, {r['dtype']}, {r['points']} points per check; wrong = a rule off by a "
            f"relative {r['error']:g}; check_grads looped over {r['points']} points of the same domain; "
            f"MLP warm time grows as parameters^{r['mlp_warm_growth_exponent']:.2f}",
            (
                "model",
                "size",
                "parameters",
                "rule",
                "verdict",
                "cold s (compile)",
                "warm s",
                "fail / pass",
                "check_grads s (compile)",
                "flagged",
                "cold / check_grads",
                "warm / check_grads",
                "failure named",
            ),
            (
                (
                    row["model"],
                    "x".join(map(str, row["size"])),
                    f"{row['parameters']:,}",
                    "wrong" if row["wrong"] else "right",
                    ("ok" if row["check_ok"] else "FAILED") + (" (false alarm)" if row["false_alarm"] else ""),
                    f"{row['check_cold_s']:.1f} ({row['check_cold_compile_s']:.1f})",
                    f"{row['check_warm_s']:.1f}",
                    f"{row['fail_over_pass_cold']:.2f}",
                    f"{row['check_grads_s']:.1f} ({row['check_grads_compile_s']:.1f})",
                    f"{row['check_grads_flagged']}/{row['check_grads_points']}",
                    f"{row['check_over_check_grads']:.2f}",
                    f"{row['check_warm_over_check_grads']:.2f}",
                    row["failure"] or "",
                )
                for row in r["rows"]
            ),
            left=("model", "rule", "verdict", "failure named"),
        )
    ]


def small_table(r: dict[str, Any]) -> list:
    """The ``small`` group: gradcheck and check_grads cold, each in a fresh process."""
    return [
        _table(
            f"the small check, order {r['order']}, {r['points']} points, cold in fresh processes (imports apart): "
            f"gradcheck.check vs check_grads(order=2) looped over {r['points']} points of the same domain; "
            f"median ratio {r['median_ratio']:.2f}",
            ("function", "dtype", "gradcheck s", "verdict", "path", "check_grads s", "flagged", "ratio"),
            (
                (
                    row["function"],
                    row["dtype"],
                    f"{row['gradcheck_s']:.2f}",
                    "ok" if row["gradcheck_ok"] else "FAILED",
                    row["path"],
                    f"{row['check_grads_s']:.2f}",
                    f"{row['check_grads_flagged']}/{row['check_grads_points']}",
                    f"{row['ratio']:.2f}",
                )
                for row in r["rows"]
            ),
            left=("function", "dtype", "verdict", "path"),
        )
    ]


def _targets(targets: list[dict[str, Any]]) -> Table:
    return _table(
        "targets, measured as ratios in this run",
        ("group", "ratio", "measured", "needed", "met"),
        (
            (
                tg["group"],
                tg["name"],
                f"{tg['ratio']:.3g}",
                f"{tg['op']} {tg['threshold']:g}",
                "yes" if tg["met"] else "NO",
            )
            for tg in targets
        ),
        left=("group", "ratio", "met"),
    )


#: One renderer per group, in the order the tables are printed: group result -> renderables.
RENDERERS: dict[str, Callable[[dict[str, Any]], list]] = {
    "softmax": _softmax,
    "chain": _chain,
    "check": _check,
    "symbolic": _symbolic,
    "models": _models,
    "small": small_table,
}


def tables(result: dict[str, Any]) -> list:
    """The result as ``rich`` tables, one per group (the check group's size sweep: a table per
    function and lines of text) and one of the targets."""
    out = []
    for name, render in RENDERERS.items():
        if name in result["groups"]:
            out.extend(render(result["groups"][name]))
    if result.get("targets"):
        out.append(_targets(result["targets"]))
    return out


def _met(tg: dict | None) -> str:
    return "" if tg is None else ("met" if tg["met"] else "MISSED")


def size_sweep_renderables(sweep: dict[str, Any]) -> list:
    """The size sweep as ``rich`` renderables: a table per function, then lines with the growth
    exponents, t(1,024) / t(64), and the targets (cold seconds, the small check)."""
    out: list[Table | Text] = []
    pts, gpts = sweep["points"], sweep["grads_points"]
    lo, hi = sweep["domain"]
    scaled = "" if gpts == pts else f" (check_grads timed on {gpts} points, scaled to {pts})"
    for f in sweep["functions"]:
        t = Table(
            title=f"seconds per check by input size n: {f['name']} ({f['what']}), order {f['order']}, "
            f"{sweep['dtype']}, domain ({lo:g}, {hi:g}); gradcheck.check max_examples={pts} "
            f"(points: with Hypothesis's edge cases), check_grads on {pts} points{scaled}; "
            f"cold = first call at that size (compile + SymPy), warm = the same call again"
        )
        for col in (
            "n",
            "path",
            "points",
            "gradcheck cold s (symbolic / sweep)",
            "gradcheck warm s",
            "check_grads cold s",
            "check_grads warm s",
            "check_grads / gradcheck (cold, warm)",
            "verdicts",
        ):
            t.add_column(col, justify="left" if col in ("path", "verdicts") else "right")
        for r in f["rows"]:
            sec = r["gradcheck_cold_seconds"]
            verdict = (
                ("pass" if r["ok"] else "FAIL " + ",".join(r["failures"]))
                + ", "
                + (f"flagged {r['check_grads_flagged']}" if r["check_grads_flagged"] else "pass")
            )
            t.add_row(
                f"{r['n']:,}",
                r["path"],
                str(r["points_checked"]),
                f"{r['gradcheck_cold_s']:.2f} ({sec['symbolic']:.2f} / {sec['sweep']:.2f})",
                f"{r['gradcheck_warm_s']:.3f}",
                f"{r['check_grads_cold_s']:.2f}",
                f"{r['check_grads_warm_s']:.2f}",
                f"{r['check_grads_over_gradcheck_cold']:.1f}x, {r['check_grads_over_gradcheck_warm']:.0f}x",
                verdict,
            )
        out.append(t)
    targets = {tg["name"]: tg for tg in sweep["targets"]}
    lines = []
    for f in sweep["functions"]:
        ge = f["growth_exponent"]
        if ge:
            lines.append(
                f"growth exponent, {f['name']} (log-log fit over n = {min(f['sizes']):,} ... "
                f"{max(f['sizes']):,}): gradcheck cold n^{ge['gradcheck_cold']:.2f}, warm "
                f"n^{ge['gradcheck_warm']:.2f}; check_grads cold n^{ge['check_grads_cold']:.2f}, "
                f"warm n^{ge['check_grads_warm']:.2f}"
            )
        if f["cold_1024_over_64"] is not None:
            tg = targets.get(f"{f['name']}: gradcheck.check cold t(1,024) / t(64)")
            lines.append(
                f"t(1,024) / t(64), gradcheck cold, {f['name']}: {f['cold_1024_over_64']:.1f} "
                f"(target <= 30: {_met(tg)})"
            )
        else:
            lines.append(f"t(1,024) / t(64), {f['name']}: not measured (needs n = 64 and 1,024 in the sweep)")
        for tg in sweep["targets"]:
            if tg["name"].startswith(f"{f['name']} n = "):
                lines.append(f"cold target, {tg['name']}: {tg['ratio']:.2f} s (target <= 30 s: {_met(tg)})")
        if f["skipped_sizes"]:
            lines.append(
                f"{f['name']} capped at n = {f['max_n']:,} (skipped: "
                f"{', '.join(f'{n:,}' for n in f['skipped_sizes'])}): its SymPy reference alone "
                f"grows about as n^2.2 (12 s at 1,024, 57 s at 2,048), over 2 minutes at 4,096"
            )
    s = sweep.get("small_check")
    if s:
        first = targets.get(next((k for k in targets if k.startswith("small check (")), ""), None)
        second = targets.get("small check, second call s")
        lines.append(
            f"small check in a fresh process ({s['function']} on (5,), order {s['order']}, "
            f"{s['max_examples']} examples, {s['points_checked']} points, path {s['path']}): "
            f"import {s['import_s']:.2f} s apart; first call {s['first_s']:.3f} s (target <= 0.8 s: "
            f"{_met(first)}), second call {s['second_s']:.3f} s (target <= 0.2 s: {_met(second)})"
        )
    out.extend(Text(ln) for ln in lines)
    return out
