"""gradcheck.sharding: sweeps split over several devices give the single-device answer.

Several devices are simulated on CPU with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
in a subprocess (the flag is read once, when JAX starts, so it cannot be set in this process).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcheck
from gradcheck.sharding import block_rows, device_count, map_rows, row_mesh

N_ROWS = 1003  # not a multiple of 4: the sweep pads and trims


def sweep_fn(x, y):
    """Row-wise, with a softmax Jacobian by autodiff and reductions inside each row."""
    s = jax.nn.softmax(x, axis=-1)
    return {
        "jac": jax.vmap(jax.jacrev(jax.nn.softmax))(x),
        "scaled": s * jnp.sin(y)[:, None],
        "norm": jnp.log1p(jnp.sum(x**2, axis=-1)),
    }


def sweep_inputs(dtype):
    rng = np.random.default_rng(7)
    return (rng.normal(size=(N_ROWS, 6)).astype(dtype), rng.normal(size=N_ROWS).astype(dtype))


# The subprocess imports this file's sweep_fn and sweep_inputs, so both runs use one definition.
CHILD = textwrap.dedent(
    """
    import contextlib, json, sys
    import numpy as np
    import jax
    sys.path.insert(0, {tests_dir!r})
    import gradcheck
    from gradcheck.sharding import device_count, map_rows
    from test_sharding import sweep_fn, sweep_inputs

    result = {{"device_count": device_count()}}
    arrays = {{}}
    for dtype in ("float32", "float64"):
        with gradcheck.float64() if dtype == "float64" else contextlib.nullcontext():
            x, y = sweep_inputs(dtype)
            out, info = map_rows(sweep_fn, x, y, return_info=True)
            one = map_rows(sweep_fn, x, y, devices=jax.devices()[:1])
            result[dtype] = {{
                "info": info.record(),
                "out_dtype": str(out["jac"].dtype),
                "shape": list(out["jac"].shape),
                "same_as_one_device_here": all(
                    np.array_equal(np.asarray(out[k]), np.asarray(one[k])) for k in out
                ),
            }}
            for k, v in out.items():
                arrays[f"{{dtype}}_{{k}}"] = np.asarray(v)
    np.savez(sys.argv[1], **arrays)
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def four_device_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharding") / "four.npz"
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    script = CHILD.format(tests_dir=os.path.dirname(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(out))


def single_device_run(dtype):
    x, y = sweep_inputs(dtype)
    out = map_rows(sweep_fn, x, y, devices=jax.devices()[:1])
    return {k: np.asarray(v) for k, v in out.items()}


def test_sweep_with_four_simulated_devices_splits_rows_over_all_four(four_device_run):
    result, _ = four_device_run
    assert result["device_count"] == 4
    for dtype in ("float32", "float64"):
        info = result[dtype]["info"]
        assert info["devices"] == 4 and info["device_ids"] == [0, 1, 2, 3]
        assert sum(info["rows_per_device"]) == N_ROWS
        assert min(info["rows_per_device"]) > N_ROWS // 4 - info["block"]  # an even split
        assert info["padded_rows"] % (4 * info["block"]) == 0
        assert result[dtype]["shape"] == [N_ROWS, 6, 6]  # padding trimmed
        assert result[dtype]["out_dtype"] == dtype


def test_sweep_on_four_devices_is_bit_identical_to_one_device(four_device_run):
    result, four = four_device_run
    for dtype in ("float32", "float64"):
        assert result[dtype]["same_as_one_device_here"]  # 1 of the 4 devices, same process
        with gradcheck.float64() if dtype == "float64" else contextlib.nullcontext():
            one = single_device_run(dtype)  # this process: its own single device
        for k, v in one.items():
            assert v.dtype == four[f"{dtype}_{k}"].dtype
            np.testing.assert_array_equal(four[f"{dtype}_{k}"], v, err_msg=f"{dtype} {k}")


DISTRIBUTED_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU has no other
    port, pid, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(f"127.0.0.1:{{port}}", num_processes=2, process_id=pid)
    sys.path.insert(0, {tests_dir!r})
    from gradcheck.sharding import device_count, map_rows
    from test_sharding import sweep_fn, sweep_inputs

    out, info = map_rows(sweep_fn, *sweep_inputs("float32"), return_info=True)
    np.savez(path, **{{k: np.asarray(v) for k, v in out.items()}})
    print(json.dumps({{"devices": device_count(), "local": jax.local_device_count(),
                      "info": info.record()}}))
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sweep_over_two_processes_with_jax_distributed_matches_one_device(tmp_path):
    # Two "hosts" on this machine, 2 simulated CPU devices each: what the README tells users
    # with several machines to do, run for real.
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    script, port = DISTRIBUTED_CHILD.format(tests_dir=os.path.dirname(__file__)), _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(port), str(pid), str(tmp_path / f"p{pid}.npz")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in (0, 1)
    ]
    outs = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=240)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    for r in outs:
        assert (r["devices"], r["local"]) == (4, 2)
        assert r["info"]["devices"] == 4 and r["info"]["processes"] == 2
        assert sum(r["info"]["rows_per_device"]) == N_ROWS
    one = single_device_run("float32")
    for pid in (0, 1):  # every process returns the whole result
        got = np.load(tmp_path / f"p{pid}.npz")
        for k, v in one.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"process {pid} {k}")


def test_sweep_matches_plain_vmapped_autodiff_to_rounding():
    x, y = sweep_inputs("float32")
    out = map_rows(sweep_fn, x, y)
    ref = jax.jit(sweep_fn)(x, y)
    for k in ref:
        np.testing.assert_allclose(np.asarray(out[k]), np.asarray(ref[k]), rtol=1e-6, atol=1e-7)


def test_function_that_mixes_rows_is_not_what_map_rows_computes(four_device_run):
    # The check used above must be able to fail: centring by the batch mean mixes rows, and
    # each block sees only its own rows, so the sweep differs from the whole-batch function.
    x, _ = sweep_inputs("float32")
    mixed = map_rows(lambda a: a - a.mean(axis=0), x)
    whole = x - x.mean(axis=0)
    assert not np.allclose(np.asarray(mixed), whole)


def test_single_device_list_reports_one_device_used():
    x, y = sweep_inputs("float32")
    _, info = map_rows(sweep_fn, x, y, devices=jax.devices()[:1], return_info=True)
    assert info.devices == 1 and info.rows_per_device == (N_ROWS,)
    assert info.record()["rows"] == N_ROWS
    assert device_count() == len(jax.devices())


def test_block_rows_depends_on_row_count_only():
    assert block_rows(1) == 1
    assert block_rows(100) == 7  # 16 blocks of 7 cover 100 rows
    assert block_rows(10**6) == 256
    assert block_rows(10**6, block=4096) == 4096


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: map_rows(lambda a: a, np.ones(3), np.ones(4)), r"arrays\[1\]: expected 3 rows"),
        (lambda: map_rows(lambda a: a, np.float64(1.0)), r"arrays\[0\]: .*scalar"),
        (lambda: map_rows(lambda a: a, np.ones((0, 2))), r"at least one row"),
        (lambda: map_rows(lambda a: a.sum(), np.ones((8, 2))), r"f: expected every output .*shape \(\)"),
        (lambda: map_rows(lambda a: a.T, np.ones((8, 2))), r"f: expected every output"),
        (lambda: map_rows(lambda a: a, np.ones(4), block=0), r"block: expected a positive int"),
        (lambda: map_rows(lambda a: a, np.ones(4), devices=[]), r"devices: expected at least one"),
        (lambda: map_rows("f", np.ones(4)), r"f: expected a callable"),
        (lambda: map_rows(lambda a: a), r"at least one array"),
        (lambda: map_rows(lambda a: np.asarray(a) + 1, np.ones(4)), r"f: expected a JAX-traceable"),
    ],
    ids=[
        "rows-differ",
        "scalar",
        "no-rows",
        "output-reduces-rows",
        "output-transposed",
        "block-zero",
        "no-devices",
        "not-callable",
        "no-arrays",
        "not-traceable",
    ],
)
def test_bad_input_is_rejected_with_the_argument_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_bound_method_compiles_once_per_instance_and_is_released_with_it():
    import gc

    from gradcheck import sharding

    traces = []

    class Program:
        def run(self, x):
            traces.append(x.shape)
            return jnp.sin(x)

    prog, x = Program(), np.linspace(0.0, 1.0, 40)
    for _ in range(3):  # prog.run is a new bound-method object each time
        map_rows(prog.run, x)
    assert len(traces) == 2  # one eval_shape check + one trace of the sharded program
    assert prog in sharding._JITTED
    del prog
    gc.collect()
    assert not any(type(k).__name__ == "Program" for k in list(sharding._JITTED))


def test_row_mesh_rejects_repeated_devices():
    d = jax.devices()[0]
    with pytest.raises(ValueError, match="devices: each device may appear once"):
        row_mesh([d, d])
