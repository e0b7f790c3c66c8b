"""Jitted benchmarks: what closed forms buy over autodiff, on whatever device JAX sees.

Six groups, each a function returning plain-JSON rows:

``softmax``   the softmax Jacobian of a batch, closed form ``y_i (delta_ij - y_j)`` against
              ``vmap(jacrev(softmax))`` and ``vmap(jacfwd(softmax))``, C in {10, 100, 1000,
              4000}; bytes written per second against the machine's copy write rate
              (:mod:`._softmax`).
``chain``     dC/db_1 of the one-neuron sigmoid chain, depth L in {4, 16, 64, 256, 1024},
              100 000 random parameter draws: the closed-form product fused into the forward
              pass against ``vmap(jax.grad)``, the previous log-space scan, and one sigmoid
              pass (:mod:`._chain`).
``check``     verification throughput: points per second of :func:`gradcheck.check` (compile
              included) against :func:`jax.test_util.check_grads` called once per point, on
              the same functions (:mod:`.cases`: one a broken ``custom_jvp``), and a size
              sweep (:func:`bench_check_sizes`): seconds per check of 100 points, cold and warm,
              for logsumexp (order 2) and a layer norm (order 1) at n = 4 ... 4096, with the
              growth exponent, and a small check timed in a fresh process (:mod:`._check`,
              :mod:`._sizes`).
``models``    checks with no closed form at model size (only when named, ``--only models``):
              an MLP of 2,410 to 600,010 parameters and a ``custom_vjp`` attention, each
              correct and wrong by a relative 1e-3, by ``gradcheck.check`` (cold and warm) and
              ``check_grads`` on 100 points each: false alarms, failing / passing, and the ratio
              between the checkers (:mod:`._models`).
``small``     the everyday small check (only when named, ``--only small``): eight functions
              (sigmoid ... a layer norm of 8) at order 2 on 100 points, ``gradcheck.check``
              and ``check_grads`` each cold in a fresh process, their ratio and its median
              (:mod:`._small`).
``symbolic``  seconds to derive and lambdify ``chain.grad_b1`` (L in {4, 64, 256, 1024}) and
              the softmax Jacobian (C in {2, 4, 8, 16}), with the growth exponent of a log-log
              fit (:mod:`._symbolic`).

How a jitted method is timed, and why outputs go into a donated buffer: :mod:`._timing`.
:func:`run` runs the groups, :func:`tables` renders a result (:mod:`._tables`),
:func:`write_json` writes it whole.
"""

from __future__ import annotations

from ._chain import (
    RENORM_EVERY as RENORM_EVERY,
    bench_chain as bench_chain,
    chain_db1_autodiff as chain_db1_autodiff,
    chain_db1_log as chain_db1_log,
    chain_db1_log_scan as chain_db1_log_scan,
    chain_draws as chain_draws,
    chain_forward_only as chain_forward_only,
)
from ._check import bench_check as bench_check, bench_check_group as bench_check_group
from ._models import attention_case as attention_case, bench_models as bench_models, mlp_case as mlp_case
from ._run import (
    DEFAULT_GROUPS as DEFAULT_GROUPS,
    GROUPS as GROUPS,
    environment as environment,
    run as run,
    write_json as write_json,
)
from ._sizes import (
    SIZE_CASES as SIZE_CASES,
    bench_check_sizes as bench_check_sizes,
    small_check_fresh as small_check_fresh,
)
from ._small import SMALL_CASES as SMALL_CASES, bench_small as bench_small
from ._softmax import (
    SOFTMAX_METHODS as SOFTMAX_METHODS,
    bench_softmax as bench_softmax,
    softmax_jacobian_closed as softmax_jacobian_closed,
)
from ._symbolic import bench_symbolic as bench_symbolic
from ._tables import (
    RENDERERS as RENDERERS,
    size_sweep_renderables as size_sweep_renderables,
    small_table as small_table,
    tables as tables,
)
from ._timing import (
    DTYPE as DTYPE,
    Timing as Timing,
    copy_bandwidth as copy_bandwidth,
    growth_exponent as growth_exponent,
    time_jitted as time_jitted,
)
from .cases import check_cases as check_cases, mutate as mutate

__all__ = [
    "DEFAULT_GROUPS",
    "DTYPE",
    "GROUPS",
    "RENDERERS",
    "RENORM_EVERY",
    "SIZE_CASES",
    "SMALL_CASES",
    "SOFTMAX_METHODS",
    "Timing",
    "bench_chain",
    "bench_check",
    "bench_check_group",
    "bench_check_sizes",
    "attention_case",
    "bench_models",
    "bench_small",
    "bench_softmax",
    "bench_symbolic",
    "chain_db1_autodiff",
    "chain_db1_log",
    "chain_db1_log_scan",
    "chain_draws",
    "chain_forward_only",
    "check_cases",
    "copy_bandwidth",
    "environment",
    "growth_exponent",
    "mlp_case",
    "mutate",
    "run",
    "size_sweep_renderables",
    "small_table",
    "small_check_fresh",
    "softmax_jacobian_closed",
    "tables",
    "time_jitted",
    "write_json",
]
