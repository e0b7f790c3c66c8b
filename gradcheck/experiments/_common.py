"""What the three experiments share: data, the digits network, argument checks, sweeps, files.

* **Data**: the 8x8 handwritten digits that ship inside scikit-learn's wheel
  (``sklearn.datasets.load_digits``: 1797 images, no download), pixels scaled from 0..16 to
  [0, 1], labels one-hot.  Nielsen measured on MNIST (28x28); the hidden layers are the same.
* **Seeds**: network *i* of a sweep is drawn from ``fold_in(key(0), i)``, so seed *i* is the
  same network whatever ``seeds`` is: a small run is a prefix of a large one.
* **Sweeps**: the per-seed computation is ``vmap``-ped over a block of seeds and run with
  :func:`gradcheck.sharding.map_rows`, which splits the block's rows over every device JAX
  sees (results identical to one device: rows never mix).  Blocks of a fixed size keep one
  compiled program and give the progress bar something to count.
* **Files**: written whole, to a temporary file in the same folder and then ``os.replace``, so
  an interrupted run leaves the previous plot and JSON intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._files import write_whole
from ..models import mlp_forward
from ..sharding import map_rows

#: The training examples every experiment measures on, as Nielsen did (1000 of them).
N_EXAMPLES = 1000

#: Root key of every random network; network *i* uses ``fold_in(key(ROOT_SEED), i)``.
ROOT_SEED = 0


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
def check_count(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum], or a ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name}: expected an integer {bound}, got {value}")
    return value


def check_positive(value: Any, name: str) -> float:
    """``value`` as a finite float > 0, or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a positive number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return value


def prepare_out(out: str | os.PathLike | None) -> Path | None:
    """Create the output folder if needed and prove it writable, before any long work.

    ``None`` means: write no files.  An existing file where the folder should be, a folder that
    cannot be created or a folder without write permission is a ValueError naming ``out``.
    """
    if out is None:
        return None
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a folder path, got {type(out).__name__}")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out: expected a folder, but {str(path)!r} is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".gradcheck-probe-", delete=True):
            pass
    except OSError as e:
        raise ValueError(f"out: cannot write into {str(path)!r}: {e.strerror or e}") from None
    return path


# ---------------------------------------------------------------------------------------------
# Files, written whole
# ---------------------------------------------------------------------------------------------
def write_json(path: Path, obj: Any) -> Path:
    return write_whole(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def write_png(path: Path, fig) -> Path:
    """The figure as a PNG, reduced to a 256-colour palette when Pillow is there.

    Why: these are line plots on white, and a palette PNG is a third of the size of matplotlib's
    RGBA output (55 KB instead of 170 KB for ``vanishing``) with no visible difference, small
    enough to commit beside a README.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    data = buf.getvalue()
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return write_whole(path, data)
    small = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        small, format="png", optimize=True
    )
    return write_whole(path, small.getvalue())


def figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas: no pyplot, so no global state and no display."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a test dependency
        raise ImportError("the experiments draw their plots with matplotlib: pip install 'gradcheck[plots]'") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Digits:
    """``x`` (n, 64) in [0, 1], ``y`` (n, 10) one-hot, ``labels`` (n,); float64 NumPy arrays."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray

    def record(self) -> dict[str, Any]:
        return {
            "source": "sklearn.datasets.load_digits (8x8 digits shipped in the wheel)",
            "examples": int(self.x.shape[0]),
            "inputs": int(self.x.shape[1]),
            "pixel_scale": "0..16 divided by 16",
            "class_counts": np.bincount(self.labels, minlength=10).tolist(),
        }


@functools.cache
def digits(start: int = 0, stop: int = N_EXAMPLES) -> Digits:
    """Examples ``start:stop`` of ``load_digits`` (the first 1000 by default), scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a test dependency
        raise ImportError("the experiments measure on scikit-learn's digits: pip install 'gradcheck[data]'") from None
    x, labels = load_digits(return_X_y=True)
    x = np.asarray(x[start:stop], dtype=np.float64) / 16.0
    labels = np.asarray(labels[start:stop])
    y = np.eye(10, dtype=np.float64)[labels]
    return Digits(x, y, labels)


# ---------------------------------------------------------------------------------------------
# Networks, costs
# ---------------------------------------------------------------------------------------------
def seed_key(seed):
    """The key of network ``seed`` (a traced integer inside a vmap)."""
    return jax.random.fold_in(jax.random.key(ROOT_SEED), seed)


def standard_normals(seed, shapes: Sequence[tuple[int, ...]]) -> list[jax.Array]:
    """Independent N(0, 1) arrays of the given shapes, all from ONE draw of network ``seed``.

    Why one draw: every ``jax.random.normal`` call compiles its own threefry kernel, and under
    ``vmap`` XLA on CPU took 20 s to compile the ten draws of a 4-hidden-layer network; one
    draw, sliced, compiles in 2 s and gives the same distribution.
    """
    sizes = [math.prod(s) for s in shapes]
    flat = jax.random.normal(seed_key(seed), (sum(sizes),))
    parts = jnp.split(flat, np.cumsum(sizes)[:-1].tolist())
    return [p.reshape(s) for p, s in zip(parts, shapes)]


def cross_entropy(z: jax.Array, y: jax.Array) -> jax.Array:
    """Nielsen's per-unit cross-entropy of sigmoid outputs ``a = sigma(z)``, mean over examples.

    ``C = -(1/n) sum_x sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]``, written with
    ``log_sigmoid(z)`` and ``log_sigmoid(-z)``: ``ln(1 - sigma(z))`` through ``log1p(-a)`` is
    ``-inf`` (and its gradient NaN) once ``a`` rounds to 1, at z > 37 in float64.
    """
    per_unit = y * jax.nn.log_sigmoid(z) + (1.0 - y) * jax.nn.log_sigmoid(-z)
    return -jnp.mean(jnp.sum(per_unit, axis=-1))


def network_sizes(hidden) -> tuple[int, ...]:
    """Layer widths of a digits network: 64 pixels in, ``hidden``, 10 classes out."""
    return (64, *hidden, 10)


def init_network(seed, hidden, scaled):
    """Weights and biases of network ``seed``; ``scaled`` (traced, 0 or 1) picks the init.

    Weights N(0, 1)/sqrt(n_in) (``scaled``) or N(0, 1), biases N(0, 1).  ``W^l`` is stored
    n_{l-1} x n_l, so that a batch of examples as rows is multiplied as ``a @ W``.
    """
    sizes = network_sizes(hidden)
    shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])] + [(b,) for b in sizes[1:]]
    draws = standard_normals(seed, shapes)
    L = len(sizes) - 1
    Ws = [w * jnp.where(scaled > 0, 1.0 / np.sqrt(w.shape[0]), 1.0) for w in draws[:L]]
    return Ws, draws[L:]


def pre_activations(Ws, bs, x):
    """``[z^1, ..., z^L]`` of the sigmoid network on the examples ``x`` (rows), by
    :func:`gradcheck.models.mlp_forward` (which takes ``W^l`` as n_l x n_{l-1}: hence ``W.T``)."""
    zs, _ = mlp_forward([(W.T, b) for W, b in zip(Ws, bs)], x)
    return zs


def network_cost(Ws, bs, x, y):
    """The per-unit cross-entropy of the network's sigmoid outputs on ``x``, against ``y``."""
    return cross_entropy(pre_activations(Ws, bs, x)[-1], y)


# ---------------------------------------------------------------------------------------------
# Sweeps over seeds, with progress
# ---------------------------------------------------------------------------------------------
class _NoProgress:
    def add_task(self, *a, **k):
        return 0

    def advance(self, *a, **k):
        pass

    def update(self, *a, **k):
        pass


@contextlib.contextmanager
def progress(console) -> Iterator[Any]:
    """A rich progress bar on ``console``, or a silent stand-in when ``console`` is None."""
    if console is None:
        yield _NoProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        yield bar


def block_size(n: int, preferred: int) -> int:
    """Rows per block: ``preferred`` (at most ``n``), a multiple of the device count."""
    d = len(jax.devices())
    b = min(preferred, n)
    return max(d, -(-b // d) * d)


def sweep(fn: Callable, rows: Sequence[np.ndarray], *, block: int, bar=None, task=None):
    """``fn(*rows)`` (row-wise, jitted) in blocks of ``block`` rows, sharded over all devices.

    Every block has the same number of rows (the last is padded by repeating its final row and
    trimmed afterwards), so ``fn`` compiles once.  Returns the outputs as NumPy arrays (same
    pytree as ``fn``'s) and the :class:`gradcheck.sharding.SweepInfo` of the first block.
    """
    n = len(rows[0])
    padded = -(-n // block) * block
    rows = [np.concatenate([r, np.repeat(r[-1:], padded - n, axis=0)]) if padded > n else r for r in rows]
    outs, info = [], None
    for i in range(0, padded, block):
        out, inf = map_rows(fn, *(r[i : i + block] for r in rows), return_info=True)
        outs.append(jax.tree.map(np.asarray, out))
        info = info or inf
        if bar is not None:
            bar.advance(task, min(block, n - i))
    joined = jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *outs)
    return joined, info


def sweep_record(info, block: int) -> dict[str, Any]:
    rec = info.record() if info is not None else {}
    rec["block_rows"] = block
    rec["how"] = "jax.vmap over seeds, gradcheck.sharding.map_rows over jax.devices()"
    return rec


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
def quantiles(a: np.ndarray, axis: int = 0) -> dict[str, list]:
    """Median and the 10/25/75/90th percentiles along ``axis``, as plain lists."""
    q = np.quantile(a, [0.1, 0.25, 0.5, 0.75, 0.9], axis=axis)
    return {
        "median": q[2].tolist(),
        "q10": q[0].tolist(),
        "q25": q[1].tolist(),
        "q75": q[3].tolist(),
        "q90": q[4].tolist(),
    }


@dataclasses.dataclass
class Result:
    """What an experiment returns (and, with ``out``, writes).

    ``data`` is the JSON document (every number measured); ``tables`` rich tables to print;
    ``findings`` the conclusions in words, each computed from ``data``; ``files`` the paths
    written (``{"png": ..., "json": ...}``, empty without ``out``); ``seconds`` wall time.
    """

    name: str
    data: dict[str, Any]
    tables: list = dataclasses.field(default_factory=list)
    findings: list[str] = dataclasses.field(default_factory=list)
    files: dict[str, Path] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    figure: Any = None

    def print(self, console) -> None:
        for t in self.tables:
            console.print(t)
        for f in self.findings:
            console.print(f"- {f}", markup=False, highlight=False)
        for kind, p in self.files.items():
            console.print(f"wrote {kind}: {p}", markup=False, highlight=False)
        console.print(f"{self.name}: {self.seconds:.1f} s", markup=False, highlight=False)


def finish(result: Result, out: Path | None, t0: float) -> Result:
    """Stamp the wall time, and write the PNG and the JSON (whole) when ``out`` is given."""
    result.seconds = time.perf_counter() - t0
    result.data["seconds"] = round(result.seconds, 3)
    result.data["findings"] = list(result.findings)
    if out is not None:
        if result.figure is not None:
            result.files["png"] = write_png(out / f"{result.name}.png", result.figure)
        result.files["json"] = write_json(out / f"{result.name}.json", result.data)
    return result
