"""Running ``gradcheck bench``: the groups by name, the environment of the run, the JSON file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._environment import environment as _environment
from .._files import write_whole
from ._chain import bench_chain
from ._check import bench_check_group
from ._models import bench_models
from ._small import bench_small
from ._softmax import bench_softmax
from ._symbolic import bench_symbolic
from ._timing import DTYPE

__all__ = ["DEFAULT_GROUPS", "GROUPS", "environment", "run", "write_json"]

GROUPS: dict[str, Callable[..., dict[str, Any]]] = {
    "softmax": bench_softmax,
    "chain": bench_chain,
    "check": bench_check_group,
    "symbolic": bench_symbolic,
    "models": bench_models,
    "small": bench_small,
}
#: what runs without ``--only``: ``models`` checks models of up to 600,000 parameters, correct and
#: wrong, with check_grads beside it (tens of minutes on 2 CPU cores), and ``small`` starts two
#: fresh processes per function (minutes): both run only when named
DEFAULT_GROUPS = ("softmax", "chain", "check", "symbolic")


def environment() -> dict[str, Any]:
    """Device, versions and load: what a reader needs to compare two runs.

    The record of :func:`gradcheck._environment.environment`, under the keys this JSON has
    always had (``jax_version``, ``device``: platform, kind, count, ...), and the dtype.
    """
    env = _environment()
    packages, devices = env["packages"], env["devices"]
    return {
        "gradcheck_version": packages["gradcheck"],
        "jax_version": packages["jax"],
        "jaxlib_version": packages["jaxlib"],
        "numpy_version": packages["numpy"],
        "python_version": env["python"],
        "device": {"platform": devices["platform"], "kind": devices["kind"], "count": devices["count"]},
        "cpu_count": env["cpu_count"],
        "load_average": env["load_average"],
        "dtype": DTYPE,
        "started": env["date"],
    }


def run(
    only: Sequence[str] | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Run the selected groups (default: :data:`DEFAULT_GROUPS`) and return one JSON-ready dict.

    ``sizes``: the input sizes of the ``check`` group's size sweep (default: its own)."""
    names = list(only or DEFAULT_GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ValueError(f"only: expected group names from {sorted(GROUPS)}, got {unknown}")
    result: dict[str, Any] = {**environment(), "quick": bool(quick), "groups": {}}
    t0 = time.perf_counter()
    for name in names:
        if progress:
            progress(name)
        t = time.perf_counter()
        kwargs = {"sizes": sizes} if name == "check" and sizes else {}
        result["groups"][name] = GROUPS[name](quick=quick, **kwargs)
        result["groups"][name]["seconds"] = time.perf_counter() - t
    result["seconds"] = time.perf_counter() - t0
    result["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["targets"] = [t for g in result["groups"].values() for t in g.get("targets", [])]
    return result


def write_json(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``result`` whole (:func:`gradcheck._files.write_whole`)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--json: the folder {folder!r} does not exist")
    write_whole(path, json.dumps(result, indent=2, sort_keys=False) + "\n")
