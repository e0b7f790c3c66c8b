"""``gradcheck bench``: the command, its table and its JSON (shapes and keys, never timings)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rich.console

from gradcheck import bench
from gradcheck.bench import _sizes as bench_sizes
from gradcheck.cli import main
from gradcheck.models import chain_truth

GROUP_KEYS = {
    "softmax": {"dtype", "output_bytes", "copy", "rows", "targets", "seconds"},
    "chain": {"dtype", "N", "rows", "agrees", "targets", "seconds"},
    "check": {
        "dtype",
        "order",
        "rows",
        "check_points_per_s",
        "check_grads_points_per_s",
        "targets",
        "seconds",
        "size_sweep",
    },
    "symbolic": {"rows", "growth_exponent", "targets", "seconds"},
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``gradcheck bench --quick --json FILE`` once, in a subprocess, as a user runs it."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck.cli", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_quick_bench_json_has_environment_and_all_four_groups(quick_run):
    _, result = quick_run
    for key in ("jax_version", "jaxlib_version", "device", "dtype", "quick", "load_average", "targets"):
        assert key in result
    assert result["quick"] is True and result["dtype"] == "float32"
    assert result["device"]["platform"] == jax.devices()[0].platform
    assert set(result["groups"]) == set(GROUP_KEYS)
    for name, keys in GROUP_KEYS.items():
        assert keys <= set(result["groups"][name]), name


def test_quick_bench_softmax_rows_cover_three_methods_per_size(quick_run):
    g = quick_run[1]["groups"]["softmax"]
    assert {(r["C"], r["method"]) for r in g["rows"]} == {
        (c, m) for c in (10, 100, 1000) for m in ("closed", "jacrev", "jacfwd")
    }
    for r in g["rows"]:
        assert r["compile_s"] > 0 and r["median_s"] > 0 and r["min_s"] <= r["median_s"]
        assert r["output_bytes"] == r["B"] * r["C"] ** 2 * 4
        assert r["agrees"], r  # closed form, jacrev and jacfwd give the same Jacobian
    assert g["copy"]["bytes_per_s"] > 0


def test_quick_bench_chain_agrees_with_autodiff_and_truth_in_log_space(quick_run):
    g = quick_run[1]["groups"]["chain"]
    assert [r["L"] for r in g["rows"]] == [4, 64, 256]
    assert g["agrees"]
    deep = g["rows"][-1]
    assert deep["autodiff_underflow_fraction"] == 1.0  # float32 autodiff is 0 at L = 256...
    assert deep["max_log_diff_vs_truth"] < 1e-2  # ...the log-space product is not


def test_quick_bench_check_catches_the_broken_rule_with_both_checkers(quick_run):
    rows = {r["function"]: r for r in quick_run[1]["groups"]["check"]["rows"]}
    broken = rows["broken custom_jvp sigmoid"]
    assert not broken["check_ok"] and "gradient" in broken["check_failures"]
    assert broken["check_grads_flagged"] > 0
    assert rows["sigmoid"]["check_ok"] and rows["sigmoid"]["check_grads_flagged"] == 0
    assert all(r["same_verdict"] for r in rows.values())


def test_quick_bench_check_size_sweep_and_the_small_check_in_a_fresh_process(quick_run):
    sweep = quick_run[1]["groups"]["check"]["size_sweep"]
    assert sweep["sizes"] == [4, 16, 64] and sweep["points"] == 100
    assert [f["name"] for f in sweep["functions"]] == ["logsumexp", "layer norm"]
    for f in sweep["functions"]:
        assert [r["n"] for r in f["rows"]] == [4, 16, 64]
        assert all(r["ok"] and r["check_grads_flagged"] == 0 for r in f["rows"])
        assert f["rows"][-1]["path"] == "probes" and f["rows"][0]["path"] == "entries"
        assert set(f["growth_exponent"]) == {"gradcheck_cold", "gradcheck_warm", "check_grads_cold", "check_grads_warm"}
        assert f["cold_1024_over_64"] is None
    small = sweep["small_check"]
    assert small["first_ok"] and small["second_ok"] and small["path"] == "entries"
    assert small["import_s"] > 0 and small["first_s"] > 0 and small["second_s"] > 0


def test_size_sweep_structure_exponents_and_the_layer_norm_cap(monkeypatch):
    # the layer norm capped at n = 2 here, as it is at 1,024 in the real sweep
    monkeypatch.setattr(
        bench_sizes, "SIZE_CASES", (bench_sizes.SIZE_CASES[0], {**bench_sizes.SIZE_CASES[1], "max_n": 2})
    )
    s = bench.bench_check_sizes(sizes=(2, 4), points=10, grads_points=2, fresh=False)
    json.dumps(s)  # plain JSON
    assert s["sizes"] == [2, 4] and s["points"] == 10 and s["grads_points"] == 2 and s["small_check"] is None
    lse, ln = s["functions"]
    assert lse["name"] == "logsumexp" and lse["order"] == 2 and lse["sizes"] == [2, 4]
    assert lse["skipped_sizes"] == [] and ln["sizes"] == [2] and ln["skipped_sizes"] == [4]
    for r in lse["rows"] + ln["rows"]:
        assert r["ok"] and r["path"] == "entries" and r["points_checked"] >= 10
        assert {"symbolic", "sweep", "shrink", "total"} <= set(r["gradcheck_cold_seconds"])
        assert r["gradcheck_cold_s"] > 0 and r["gradcheck_warm_s"] > 0
        assert r["check_grads_cold_s"] >= r["check_grads_first_call_s"] > 0 and r["check_grads_warm_s"] > 0
        assert r["check_grads_flagged"] == 0
    ge = lse["growth_exponent"]
    assert set(ge) == {"gradcheck_cold", "gradcheck_warm", "check_grads_cold", "check_grads_warm"}
    assert ge["gradcheck_cold"] == pytest.approx(
        bench.growth_exponent([2, 4], [r["gradcheck_cold_s"] for r in lse["rows"]])
    )
    assert ln["growth_exponent"] == {}  # one size: no fit
    assert lse["cold_1024_over_64"] is None and s["targets"] == []
    from rich.console import Console

    console = Console(width=200, record=True)
    for r in bench.size_sweep_renderables(s):
        console.print(r)
    text = console.export_text()
    assert "logsumexp" in text and "growth exponent, logsumexp" in text and "capped at n = 2" in text
    with pytest.raises(ValueError, match="sizes"):
        bench.bench_check_sizes(sizes=(0, 4), fresh=False)


def test_bench_sizes_option_parses_and_rejects():
    from gradcheck.cli import _bench as _cli_bench

    assert _cli_bench._sizes("4,16,1_024") == (4, 16, 1024)
    for bad in ("", "4,x", "0,4"):
        with pytest.raises(Exception, match="expected"):
            _cli_bench._sizes(bad)


def test_quick_bench_symbolic_rows_and_growth_exponents(quick_run):
    g = quick_run[1]["groups"]["symbolic"]
    assert {r["what"] for r in g["rows"]} == {"chain.grad_b1", "softmax jacobian"}
    assert all(r["ok"] for r in g["rows"])
    assert set(g["growth_exponent"]) == {"chain.grad_b1", "softmax jacobian"}


def test_quick_bench_prints_one_table_per_group_and_the_targets(quick_run):
    stdout, result = quick_run
    for title in (
        "softmax Jacobian",
        "dC/db1 of the one-neuron chain",
        "verification throughput",
        "seconds per check by input size n: logsumexp",
        "seconds per check by input size n: layer norm",
        "growth exponent, logsumexp",
        "small check in a fresh process",
        "symbolic cost",
        "targets, measured as ratios in this run",
    ):
        assert title in stdout
    assert all(t["op"] in (">=", "<=") and isinstance(t["met"], bool) for t in result["targets"])
    # softmax 2, chain 3 depths + 1, check 2 + the small check's 2 (--quick sweeps n = 4, 16, 64:
    # no t(1024)/t(64) and no cold target at n = 256 or 1,024)
    assert len(result["targets"]) == 2 + 4 + 2 + 2


def test_bench_rejects_unknown_group_and_missing_json_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--only", "nope"])
    assert main(["bench", "--quick", "--json", str(tmp_path / "no" / "such" / "b.json")]) == 2
    assert "--json" in capsys.readouterr().err
    with pytest.raises(ValueError, match="only: expected group names"):
        bench.run(["nope"])


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("previous")
    bench.write_json({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):  # not serialisable: the previous file must survive
        bench.write_json({"a": object()}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]


def test_closed_softmax_jacobian_matches_jacrev_and_a_wrong_one_does_not():
    a = jnp.asarray(np.random.default_rng(1).normal(scale=5, size=(3, 7)), jnp.float32)
    ref = bench.SOFTMAX_METHODS["jacrev"](a)
    np.testing.assert_allclose(bench.SOFTMAX_METHODS["closed"](a), ref, atol=1e-7)
    wrong = jax.vmap(lambda v: jax.nn.softmax(v)[:, None] * (1 - jax.nn.softmax(v)[None, :]))(a)
    assert not np.allclose(wrong, ref, atol=1e-3)  # y_i (1 - y_j) everywhere: off the diagonal wrong


def test_log_space_chain_gradient_matches_autodiff_where_autodiff_is_finite():
    a0, w, b, y = bench.chain_draws(8, 64)
    log_c, sign_c = bench.chain_db1_log(a0, w, b, y)
    g = np.asarray(bench.chain_db1_autodiff(a0, w, b, y), np.float64)
    np.testing.assert_allclose(np.asarray(log_c), np.log(np.abs(g)), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(sign_c), np.sign(g))
    # a closed form that drops one layer's weight is caught by the same comparison
    log_wrong, _ = bench.chain_db1_log(a0, w.at[1].set(1.0), b, y)
    assert np.max(np.abs(np.asarray(log_wrong) - np.log(np.abs(g)))) > 0.1


def test_time_jitted_reports_compile_apart_and_writes_into_the_donated_buffer():
    x = jnp.arange(8.0)
    buf = jnp.zeros(8)
    timing, out = bench.time_jitted(lambda b, x: x * 2, (buf, x), repeats=3, donate_first=True)
    assert timing.repeats == 3 and timing.compile_s > 0 and timing.min_s <= timing.median_s
    np.testing.assert_array_equal(out, 2 * np.arange(8.0))
    assert buf.is_deleted()  # donated: the output took its memory
    with pytest.raises(ValueError, match="repeats"):
        bench.time_jitted(lambda x: x, (x,), repeats=0)


def test_growth_exponent_of_a_power_law():
    assert bench.growth_exponent([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two different sizes"):
        bench.growth_exponent([4], [1.0])


def _truth_logs(a0, w, b, y, chains):
    out = [chain_truth(*(np.asarray(v, np.float64) for v in (a0[i], w[:, i], b[:, i], y[i]))) for i in chains]
    return np.array([t[0][0] for t in out]), np.array([t[1][0] for t in out])


def test_fused_chain_product_matches_the_50_digit_truth_at_depth_256_where_an_unrenormalised_one_underflows():
    a0, w, b, y = bench.chain_draws(256, 16)
    log_c, sign_c = (np.asarray(v, np.float64) for v in bench.chain_db1_log(a0, w, b, y))
    t_log, t_sign = _truth_logs(a0, w, b, y, range(3))
    np.testing.assert_allclose(log_c[:3], t_log, atol=1e-3)
    np.testing.assert_array_equal(sign_c[:3], t_sign)
    # the same product never renormalised: 256 factors of about 2^-3 leave float32 (the split matters)
    log_raw, _ = bench.chain_db1_log(a0, w, b, y, renorm_every=256)
    assert not np.isfinite(np.asarray(log_raw)).any()


def test_fused_chain_product_agrees_with_the_log_scan_at_a_depth_that_is_no_multiple_of_the_block():
    a0, w, b, y = bench.chain_draws(13, 32)  # 8 + 5 layers: the remainder loop runs
    log_c, sign_c = (np.asarray(v, np.float64) for v in bench.chain_db1_log(a0, w, b, y))
    log_s, sign_s = (np.asarray(v, np.float64) for v in bench.chain_db1_log_scan(a0, w, b, y))
    np.testing.assert_allclose(log_c, log_s, atol=1e-4)
    np.testing.assert_array_equal(sign_c, sign_s)
    t_log, _ = _truth_logs(a0, w, b, y, range(2))
    np.testing.assert_allclose(log_c[:2], t_log, atol=1e-4)


def test_mutate_breaks_the_rule_only_above_the_threshold_forward_and_reverse():
    for mode, factor in (("jvp", 1.1), ("vjp", 0.9)):
        g = bench.mutate(jnp.sin, 1.0, mode, error=0.1)
        for x, want in ((0.5, np.cos(0.5)), (2.0, factor * np.cos(2.0))):
            np.testing.assert_allclose(g(x), np.sin(x), rtol=1e-6)  # the function itself is untouched
            np.testing.assert_allclose(jax.grad(g)(x), want, rtol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        bench.mutate(jnp.sin, 1.0, "jacobian")


def test_check_cases_are_fresh_objects_so_each_check_group_run_is_cold():
    first, second = bench.check_cases(), bench.check_cases()
    assert [c["name"] for c in first] == ["sigmoid", "softmax (5,)", "log_softmax (5,)", "broken custom_jvp sigmoid"]
    assert [c["broken"] for c in first] == [False, False, False, True]
    for a, b in zip(first, second):
        assert a["ref"] is not b["ref"]
    assert first[-1]["fn"] is not second[-1]["fn"]


def test_every_group_has_a_renderer_and_a_result_renders_only_its_groups():
    assert list(bench.RENDERERS) == list(bench.GROUPS)
    symbolic = {
        "rows": [
            {
                "what": "chain.grad_b1",
                "size": 4,
                "derive_s": 0.1,
                "lambdify_s": 0.1,
                "seconds": 0.2,
                "first_call_s": 0.1,
                "value": 0.5,
                "expected": 0.5,
                "ok": True,
            }
        ],
        "growth_exponent": {"chain.grad_b1": 1.0},
        "targets": [],
    }
    out = bench.tables({"groups": {"symbolic": symbolic}, "targets": []})
    assert len(out) == 1 and out[0].title.startswith("symbolic cost")


def test_compile_seconds_counts_a_new_program_and_nothing_for_a_cached_one():
    from gradcheck.bench._timing import compile_seconds

    f = jax.jit(lambda x: jnp.sin(x) * 3.0 + 0.25)
    x = jnp.ones(7)
    with compile_seconds() as first:
        f(x).block_until_ready()
    with compile_seconds() as again:
        f(x).block_until_ready()
    assert first["s"] > 0 and again["s"] == 0


def test_a_models_row_reports_the_compile_inside_its_cold_seconds():
    from gradcheck.bench._models import _one
    from gradcheck.bench._tables import _models

    row = _one("mlp", (4,), True, 5, 0)  # 310 parameters, the wrong tanh rule
    assert not row["check_ok"] and row["failure"]
    assert 0 < row["check_cold_compile_s"] < row["check_cold_s"]
    assert 0 <= row["check_grads_compile_s"] < row["check_grads_s"]
    row |= {"fail_over_pass_cold": 1.0, "check_over_check_grads": 1.0, "check_warm_over_check_grads": 1.0}
    (table,) = _models({"dtype": "float32", "points": 5, "error": 1e-3, "rows": [row], "mlp_warm_growth_exponent": 1.0})
    console = rich.console.Console(file=io.StringIO(), width=400)
    console.print(table)
    assert f"{row['check_cold_s']:.1f} ({row['check_cold_compile_s']:.1f})" in console.file.getvalue()
