"""Per wrong rule of tests/test_check_broken.py: caught by ``gradcheck.check(fn, None, ...)``?
caught by ``jax.test_util.check_grads`` (order 2 where the rule has one, else 1; 100 points)?
And false alarms of each on the correct functions of tests/test_check_correct.py, in float64
and float32.  Time of each beside.

    python benchmarks/compare_reference_none.py
"""

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_check_broken import BROKEN
from test_check_correct import CORRECT

import gradcheck

POINTS = 100


def points(shapes, domain, dtype, seed=0):
    rng = np.random.default_rng(seed)
    doms = domain if isinstance(domain[0], (tuple, list)) else [domain] * len(shapes)
    out = []
    for _ in range(POINTS):
        out.append(tuple(np.asarray(rng.uniform(lo, hi, size=s), dtype=dtype) for s, (lo, hi) in zip(shapes, doms)))
    return out


def check_grads_flags(fn, shapes, domain, dtype, order):
    from jax.test_util import check_grads

    n = 0
    ctx = jax.enable_x64(dtype == "float64")
    with ctx:
        for args in points(shapes, domain, dtype):
            try:
                check_grads(fn, args, order=order, modes=("fwd", "rev"))
            except AssertionError:
                n += 1
            except Exception:
                try:
                    check_grads(fn, args, order=order, modes=("rev",))
                except AssertionError:
                    n += 1
                except Exception:
                    pass
    return n


def main():
    print("| rule | dtype | order | reference=None | s | check_grads (100 points) | s |")
    print("|---|---|---|---|---|---|---|")
    for name, b in BROKEN.items():
        t0 = time.perf_counter()
        r = gradcheck.check(
            b.fn, None, shapes=b.shapes, domain=b.domain, order=b.order, dtype=b.dtype, max_examples=POINTS
        )
        t1 = time.perf_counter()
        flags = check_grads_flags(b.fn, b.shapes, b.domain, b.dtype, b.order)
        t2 = time.perf_counter()
        print(
            f"| {name} | {b.dtype} | {b.order} | {'caught' if not r.ok else 'missed'} | {t1 - t0:.1f} | "
            f"{f'caught at {flags}' if flags else 'missed'} | {t2 - t1:.1f} |",
            flush=True,
        )
    print()
    print("| correct function | dtype | reference=None | check_grads false alarms (of 100) |")
    print("|---|---|---|---|")
    for name, (fn, _ref, shapes, domain) in CORRECT.items():
        for dtype in ("float64", "float32"):
            r = gradcheck.check(fn, None, shapes=shapes, domain=domain, dtype=dtype, max_examples=POINTS)
            flags = check_grads_flags(fn, shapes, domain, dtype, 1)
            print(f"| {name} | {dtype} | {'pass' if r.ok else 'FALSE ALARM'} | {flags} |", flush=True)


if __name__ == "__main__":
    main()
