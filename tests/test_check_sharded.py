"""gradcheck.check's sweep split over several devices gives the same verdicts and failures."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, jax, jax.numpy as jnp, sympy as sp, gradcheck

    @jax.custom_jvp
    def f(x):
        return jax.nn.sigmoid(x)

    @f.defjvp
    def _(p, t):
        (x,), (dx,) = p, t
        s = jax.nn.sigmoid(x)
        return s, jnp.where(x > 3, s * (1 + s), s * (1 - s)) * dx

    def sm(a):
        e = [sp.exp(v) for v in a]
        return sp.Matrix([v / sum(e) for v in e])

    bad = gradcheck.check(f, lambda x: 1 / (1 + sp.exp(-x)), shapes=[()], domain=(-10, 10), max_examples=1000)
    good = gradcheck.check(jax.nn.softmax, sm, shapes=[(4,)], max_examples=1000)
    print(json.dumps({
        "devices": len(jax.devices()),
        "bad": [(f.kind, f.mode, f.input_repr(), f.points) for f in bad.failures],
        "bad_devices": bad.devices,
        "good_ok": good.ok,
        "good_devices": good.devices,
    }))
    """
)


def run(devices):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_check_sweep_split_over_4_devices_finds_the_same_failures_as_on_one():
    one, four = run(1), run(4)
    assert one["devices"] == 1 and four["devices"] == 4
    assert four["bad_devices"] == 4 and four["good_devices"] == 4, four
    assert one["bad_devices"] == 1
    assert four["bad"] == one["bad"] and one["bad"], (one, four)
    assert one["good_ok"] and four["good_ok"]
