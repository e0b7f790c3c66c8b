"""``reference=None``: checks with no closed form, the truth taken from ``fn`` itself.

* Values: for a float32 check, the same function in float64 (a float64 check's are not judged).
* Derivatives: Richardson-extrapolated central differences of ``fn`` in float64 along the same
  random directions the probes use (:func:`gradcheck.oracles.numerical.directional_derivative`), each
  with an error bound.  The JVP per leaf along its tangent; the VJP through the dot test
  ``vjp(c) . t`` against ``c . (d/dt f)``, and where that fails, the whole pulled-back row at that
  point entry by entry (naming its entry); ``order=2``: the derivative of the float64 pull-back
  along t (Hessian-vector products), the mixed second difference (forward-over-forward).
* A disagreement is a failure only beyond the dtype's tolerance *plus* ten times the truth's
  error bound; where float64 is not finite or the extrapolation does not settle (a kink, a
  pole), the point is counted as not judged, with the reason.
"""

from __future__ import annotations

from collections.abc import Hashable

import jax
import numpy as np

from ..oracles import numerical
from . import _rounding
from ._accuracy import of_numeric
from ._engine import Disagreement, Engine
from ._judge import tolerance
from ._spec import TOLERANCES
from ._truth64 import IN64, Tier, dot_size, f64_functions, leaf_jvps, narrows, own64, rows_of, sign_words

__all__ = ["NumericEngine", "NoReference", "MARGIN"]

#: A disagreement must exceed the tolerance plus MARGIN times the truth's error bound.
MARGIN = 10.0
EPS = float(np.finfo(np.float64).eps)
#: ... plus NOISE_FACTOR times the rounding that a correct evaluation of the same computation in
#: the checked dtype can make there, simulated by Monte Carlo arithmetic (:mod:`._rounding`,
#: ``_NOISE_DRAWS`` draws).  A contraction of n terms rounds like the terms it sums, not like its
#: result: at a symmetric point of a 38,410-parameter MLP (all logits equal) the true JVP along W2
#: is 1e-11 and float32 gives -1.1e-5.  A rule wrong by 1e-3 is a systematic error that the
#: simulated rounding does not scatter.
NOISE_FACTOR = 8.0
_NOISE_DRAWS = 3  # Monte Carlo draws
_NOISE_ROWS = 1  # rows per call of the Monte Carlo program (few rows need it: none padded)
_NOISE_PER_MODE = 8  # failing rows per mode judged again with the rounding allowance
_LOCALISE_ROWS = 4  # failing points per check whose VJP row is searched for the failing entry
_BLOCKS = 8  # the row is split into this many blocks per round of the search
_FIELDS = ("value", "error", "converged")


class NoReference:
    """What the sampler and the engine need of a reference, when there is none."""

    kinks: list = []
    jumps = False

    def __init__(self, leaf_shapes, n_out):
        sizes = [int(np.prod(s)) if s else 1 for s in leaf_shapes]
        self.arg_of = np.repeat(np.arange(len(sizes)), sizes)
        self.n_in, self.n_out = int(sum(sizes)), n_out
        self.out_shape = (n_out,)

    def kink_solvers(self):
        return []


_MCA: dict = {}  # (fn, shapes, order, dtype, modes) -> the Monte Carlo arithmetic program


class NumericEngine(Engine):
    """The truth from ``fn`` itself: float64 values and extrapolated differences."""

    path = "numerical"

    def __init__(self, spec, ref, prog, points: int = 0):
        super().__init__(spec, ref, prog, points)
        self.fns = f64_functions(spec, prog)
        self.masks = np.stack([(ref.arg_of == a).astype(np.float64) for a in range(len(spec.leaf_shapes))])
        self.bounds: list[float] = []
        self.localised = 0
        self.tier = Tier(self.dtype, spec.atol, spec.rtol, self.eps)
        self.tier64 = None  # float32: fn's own float64 derivatives judged at float64's tolerance too
        if self.dtype == "float32":
            if "narrows" not in self.fns:  # once per fn and shapes
                self.fns["narrows"] = narrows(self.fns["f"], prog.n_in, prog.n_out)
            d32, d64 = TOLERANCES["float32"], TOLERANCES["float64"]
            if not self.fns["narrows"]:  # the user's float32 tolerance, scaled
                atol, rtol = d64["atol"] * spec.atol / d32["atol"], d64["rtol"] * spec.rtol / d32["rtol"]
                self.tier64 = Tier("float64", atol, rtol, EPS)

    def _judge(self, mode, got, est, mag, conv, tier, f=1.0, noise=0.0):
        """(bad, err, exp, got) per entry, at ``tier``'s tolerance.  ``noise``: how far fn's own
        result moves when its inputs move by one ulp (:meth:`_noise`)."""
        g = np.asarray(got, np.float64).reshape(est.value.shape)
        with np.errstate(all="ignore"):
            diff = np.abs(g - est.value)
            noise = np.broadcast_to(np.asarray(noise, np.float64), diff.shape)
            tol = tolerance(f, tier.atol, tier.rtol, mag, MARGIN * est.error + NOISE_FACTOR * noise)
            ok_conv = conv & np.isfinite(est.value)
            bad = ok_conv & ~(diff <= tol)
            bad |= ok_conv & ~np.isfinite(g)
            err = np.where(est.value != 0, diff / np.abs(est.value), diff)
        big = ok_conv & (np.abs(est.value) > tier.atol)
        rel = np.abs(est.error[big]) / np.abs(est.value[big])
        if rel.size and tier is self.tier and mode != "value":  # the values' truth is exact (fn in float64)
            self.bounds.append(rel)
        return bad, err, est.value, g

    def _note_unjudged(self, tr, got):
        """Counts the rows where the truth of a mode of ``got`` did not settle."""
        for mode in ("value", "jvp", "vjp", "hvp fwd-over-rev", "hvp rev-over-rev", "fwd-over-fwd"):
            est = tr.get(mode.split(" ")[0] if mode.startswith("hvp") else mode)
            rows = int((~est.converged).reshape(len(est.converged), -1).any(axis=1).sum()) if mode in got and est else 0
            if rows:
                self.tally.unjudged[mode] = self.tally.unjudged.get(mode, 0) + rows

    def estimate(self, X, T, C, S):
        """The float64 points and directions (S at order 2 only: zeros, not copied), fn's modes' truths there."""
        D = [np.asarray(A, np.float64) for A in (X, T, C)] + [S if self.spec.order == 1 else np.asarray(S, np.float64)]
        return D, self._truths(*D, set(self.prog.names))

    def judge(self, X, T, C, S, got, est, count, alone, in64):
        with np.errstate(all="ignore"):  # range points: inf - inf and 0 * inf are judged, not warned
            return self._judge_batch(X, T, C, S, got, est, count, in64)

    def _noise(self, X, T, C, S, got, modes, tier):
        """Per mode, the rounding that a correct evaluation of fn's own computation in
        ``tier``'s dtype can make at each point (:mod:`._rounding`): the spread of
        ``_NOISE_DRAWS`` perturbed float64 evaluations; measured for ``modes`` (those that
        failed without it), zero for the rest of ``got``."""
        cache = (
            _MCA if isinstance(self.spec.fn, Hashable) else self.__dict__.setdefault("_mca", {})
        )  # unhashable: this check's
        N, K = self.prog.n_in, self.prog.n_out
        with jax.enable_x64(True):
            progs = {}
            for k in (k for k in self.prog.names if k in got and k in modes):  # one program per mode
                key = (self.spec.fn, repr(self.spec.shapes), self.spec.order, self.dtype, k)  # eps: an argument
                if key not in cache:
                    ex = (np.zeros(N), np.zeros(N), np.zeros(K), np.zeros(N))
                    cache[key] = _rounding.mca({k: self._mode_fn(k)}, ex, _NOISE_DRAWS)
                progs[k] = cache[key]
            moves = {k: np.zeros(np.shape(v)) for k, v in got.items()}
            B = X.shape[0]
            size = _NOISE_ROWS  # one compilation per check: the shrinker's and the sweep's rows alike
            for s0 in range(0, B, size):
                m = min(size, B - s0)
                rows = [np.asarray(self._pad(A[s0 : s0 + m], size), np.float64) for A in (X, T, C, S)]
                for k, mc in progs.items():
                    d = np.asarray(mc(*rows, tier.eps)[k], np.float64)
                    finite = np.isfinite(d)
                    spread = np.max(np.where(finite, d, -np.inf), axis=0) - np.min(np.where(finite, d, np.inf), axis=0)
                    spread = np.where(np.isfinite(spread), spread, 0.0)[:m]
                    moves[k][s0 : s0 + m] = spread.reshape(moves[k][s0 : s0 + m].shape)
        return moves

    def _mode_fn(self, k):
        """fn's mode ``k`` as the Monte Carlo program evaluates it.  The leaves' JVPs as one JVP
        with a batch of tangents: the same operations as fn's JVP per leaf, its primal traced
        once (for five leaves a fifth of the program, which took seconds to compile)."""
        if k != "jvp" or len(self.masks) == 1:
            return self.prog.mode_fn(k)
        f = self.prog.flat_fn
        jvl = leaf_jvps(lambda x, t: jax.jvp(f, (x,), (t,))[1], self.prog)  # as the float64 tier's
        return lambda x, t, c, s: jvl(x, t)

    def _judge_batch(self, X, T, C, S, got, est, count, in64):
        """The truths once; fn's results judged against them in the checked dtype and, for
        float32, fn's own float64 derivatives at float64's tolerance (a rule wrong by less
        than float32's tolerance, and far more than its rounding, is wrong in float64 too:
        those failures' modes read ``"vjp in float64"``)."""
        D, tr = est
        if count:
            self._note_unjudged(tr, got)
        own = own64(self.fns, *D[:3], got) if self.tier64 is not None and in64 else {}
        if count and self.accuracy_rows is None and self.dtype != "float64":
            self.accuracy_rows = of_numeric(self, *D[:3], got, own, tr["value"].value if "value" in tr else None)
        budget, used = _LOCALISE_ROWS if count else 1, self.localised  # failing VJP rows searched
        out = self._confirmed(tr, D, got, self.tier, budget, count=count)
        # float64 where float32 passed: in the modes float32 found right, at the rows where it
        # found nothing; one failing VJP row searched for its entry (at 150k parameters a search
        # costs seconds, and one named entry shows the rule wrong), if the budget has one left
        keep = np.setdiff1d(np.arange(X.shape[0]), [f.row for f in out])
        budget -= self.localised - used
        shown = {f.mode.removesuffix(".t") for f in out}
        own = {k: v for k, v in own.items() if k not in shown and (k != "vjp" or budget > 0)}
        if own and keep.size:  # judged at every row, only those kept confirmed: no copies of the points
            found = self._confirmed(
                tr, D, own, self.tier64, min(1, budget), None if keep.size == X.shape[0] else keep, count
            )
            out += [f._replace(mode=f.mode + IN64) for f in found]
        return out

    def _confirmed(self, tr, D, got, tier, budget, rows=None, count=False):
        """Judged without the rounding allowance first; the rows that fail are judged again with
        it (:meth:`_noise`), so that a passing sweep never runs the Monte Carlo program.  Per mode
        at most ``_NOISE_PER_MODE`` failing rows are judged again, one row at a time: where one of
        them still fails, the mode's other failing rows count as they were judged (a wrong rule
        fails everywhere, and pays for one row, not for all), so a mode confirmed is not measured
        again; where none does, they are dropped with it.  At most ``budget`` failing VJP rows are
        searched for their entry (only searched rows name one: the VJP is measured while the
        budget lasts).  ``rows``: the rows whose failures count (None: all); ``count``: the
        sweep's, counted into the tally (:meth:`~._engine.Tally.note_rounding`)."""
        first = self._judge_rows(tr, D, got, None, tier, localise=False)
        if rows is not None:
            kept = set(rows.tolist())
            first = [f for f in first if f.row in kept]
        by_mode: dict[str, list[int]] = {}
        for f in first:
            seen = by_mode.setdefault(f.mode, [])
            if f.row not in seen:
                seen.append(f.row)
        out, confirmed, chosen, start = [], set(), set(), self.localised
        for r in sorted(set().union(*(rs[:_NOISE_PER_MODE] for rs in by_mode.values()))):
            # the modes failing here not yet confirmed (a mode judged here without its allowance
            # must be one that counts as first judged); the VJP while rows may still be searched
            # (a judged row not searched names nothing)
            left = budget - (self.localised - start)
            modes = {m.removesuffix(".t") for m, rs in by_mode.items() if r in rs}
            modes = {m for m in modes if (m == "vjp" and left > 0) or (m != "vjp" and m not in confirmed)}
            if not modes:
                continue
            chosen.add(r)
            idx = np.asarray([r])
            sub = [A[idx] for A in D]
            got_sub = {k: np.asarray(v)[idx] for k, v in got.items()}
            noise = self._noise(*sub, got_sub, modes, tier)  # zero in the modes confirmed: as first judged
            again = self._judge_rows(rows_of(tr, idx), sub, got_sub, noise, tier, localise=True, localise_rows=left)
            out += [f._replace(row=r) for f in again]
            confirmed |= {f.mode.removesuffix(".t") for f in again}
        if any(f.mode == "vjp" for f in out):  # a row's error spread too thin counts only where none is named
            out = [f for f in out if f.mode != "vjp.t"]
        # the first pass marks a failing VJP row without naming its entry: only judged rows name one
        out += [f for f in first if f.row not in chosen and f.mode in confirmed and f.mode not in ("vjp", "vjp.t")]
        if count:
            self.tally.note_rounding(tier.dtype, by_mode, chosen, {f.row for f in out}, confirmed)
        return out

    def _truths(self, X64, T64, C64, S64, got):
        """The float64 truths of the modes ``got`` at these rows, and the size of the terms
        fn's derivatives sum (:func:`._truth64.term_sizes`)."""
        B, N = X64.shape
        fns = self.fns
        words = sign_words([self.seed, 19, B], B, N, self.ref.n_out)
        wanted = {"cz": "value" in got and self.dtype != "float64", "jv": "jvp" in got, "vj": "vjp" in got}
        tr = {"sizes": fns["sizes"](X64, words, {k for k, w in {**wanted, "hs": self.spec.order == 2}.items() if w})}
        if "value" in got and self.dtype != "float64":
            with jax.enable_x64(True):
                v64 = np.asarray(fns["values"](X64))
            tr["value"] = numerical.Estimate(v64, np.zeros_like(v64), np.isfinite(v64))
        if "jvp" in got:  # J t_a per leaf: the JVPs' truth, and summed the dot test's
            if fns["leaves"]:  # each leaf's columns of T: no copy of the whole of T per leaf
                ests = [numerical.directional_derivative(b, X64, T64[:, b.start : b.stop]) for b in fns["leaves"]]
            else:  # unbatched (:mod:`._batching`): the whole point along a masked tangent
                ests = [numerical.directional_derivative(fns["f"], X64, T64 * m) for m in self.masks]
            tr["jvp"] = est = numerical.Estimate(*(np.stack([getattr(e, k) for e in ests], 1) for k in _FIELDS))
        if "vjp" in got:
            # the dot test: vjp(c) . t against c . (d/dt f) = sum over leaves and outputs of c_k (J t_a)_k
            if "jvp" not in got:  # no forward mode (a custom_vjp): one difference along all of t
                Z1 = np.concatenate([X64, C64], 1)
                tr["vjp"] = numerical.directional_derivative(fns["dot_c"], Z1, np.concatenate([T64, 0 * C64], 1))
            else:
                terms = C64[:, None, :] * est.value
                tr["vjp"] = numerical.Estimate(
                    np.sum(terms, axis=(1, 2))[:, None],
                    (
                        np.sum(np.abs(C64[:, None, :]) * est.error, axis=(1, 2))
                        + terms[0].size * EPS * np.sum(np.abs(terms), axis=(1, 2))
                    )[:, None],
                    np.all(est.converged, axis=(1, 2))[:, None],
                )
        if self.spec.order == 2:
            Z1 = np.concatenate([X64, C64], 1)
            tr["hvp"] = numerical.directional_derivative(fns["pull"], Z1, np.concatenate([T64, 0 * C64], 1))
            if "fwd-over-fwd" in got:
                tr["fwd-over-fwd"] = numerical.mixed_second(fns["f"], X64, T64, S64)
        return tr

    def _judge_rows(self, tr, D, got, noise, tier, localise, localise_rows=1):
        """fn's results ``got`` against the truths ``tr`` at ``tier``'s tolerance: [(row, mode,
        entry, exp, got, err)]; a failing VJP row is searched for its entry where ``localise``."""
        if noise is None:  # none: read-only zeros of no memory (a VJP's are the size of the points)
            noise = {k: np.broadcast_to(np.float64(0.0), np.shape(v)) for k, v in got.items()}
        X64, T64, C64, _ = D
        B = X64.shape[0]
        sizes = tr["sizes"]
        fails = []

        def add(mode, bad, err, exp, g):
            for r, e in zip(*np.nonzero(bad.reshape(B, -1))):
                fails.append(
                    Disagreement(int(r), mode, int(e), *(float(a.reshape(B, -1)[r, e]) for a in (exp, g, err)))
                )

        def judge(mode, est, mag, f=1.0):
            return self._judge(mode, got[mode], est, mag, est.converged, tier, f, noise=noise[mode])

        if "value" in got and "value" in tr:
            v64 = tr["value"].value
            with np.errstate(all="ignore"):
                mag = np.abs(v64) + 16 * self.eps / self.spec.rtol * sizes["cz"]
            add("value", *judge("value", tr["value"], mag))
        if "jvp" in got:
            est = tr["jvp"]
            add("jvp", *judge("jvp", est, np.abs(est.value) + sizes["jv"][:, None, :]))
        if "vjp" in got:
            e1, gv = tr["vjp"], np.asarray(got["vjp"])  # fn's dtype: rows widened where searched
            g = np.einsum("ij,ij->i", gv, T64, dtype=np.float64)[:, None]
            size, nv = sizes["vj"], noise["vjp"]
            mag = np.abs(e1.value) + dot_size(size, T64)
            bad, err, exp, gg = self._judge("vjp", g, e1, mag, e1.converged, tier, noise=dot_size(nv, T64))
            if not localise:  # the first pass only marks the rows to judge again
                fails.extend(Disagreement(int(r), "vjp.t", 0, 0.0, 0.0, 0.0) for r in np.flatnonzero(bad[:, 0]))
            unnamed = []  # rows whose error is spread too thin for a block: failures only if none is named
            for r in np.flatnonzero(bad[:, 0])[: (localise_rows if localise else 0)]:
                z = np.concatenate([X64[r], C64[r]])
                found = self._localise(z, T64[r], np.asarray(gv[r], np.float64), size[r], nv[r], tier)
                self.localised += 1
                fails.extend(Disagreement(int(r), "vjp", e, ex, gx, er) for e, ex, gx, er in found)
                if not found:
                    unnamed.append(
                        Disagreement(int(r), "vjp.t", 0, float(exp[r, 0]), float(gg[r, 0]), float(err[r, 0]))
                    )
            fails += unnamed if not any(f.mode == "vjp" for f in fails) else []
        for mode in ("hvp fwd-over-rev", "hvp rev-over-rev"):
            if mode in got:
                eh = tr["hvp"]
                add(mode, *judge(mode, eh, np.abs(eh.value) + sizes["hs"], self.spec.order2_factor))
        if "fwd-over-fwd" in got:
            e2 = tr["fwd-over-fwd"]
            add("fwd-over-fwd", *judge("fwd-over-fwd", e2, np.abs(e2.value), self.spec.order2_factor))
        return fails

    def _localise(self, z, t, g, size, nv, tier):
        """The failing entries of one point's pulled-back row, found by a search over blocks: the
        dot test ``vjp(c) . t_B`` against ``d/dt c . f(x + t t_B)`` on ``_BLOCKS`` blocks of the
        row at once, the worst block (its error over its tolerance) split again, until a block is
        small enough to difference entry by entry.  About ``_BLOCKS * log_B(N)`` differences
        instead of N: a 38,410-entry row takes 48, not 38,410.  Returns [(entry, exp, got, err)];
        empty where the error is spread so thin that no block fails on its own."""
        N = g.size
        K = z.size - N
        cand = np.arange(N)
        fns = self.fns
        while cand.size > _BLOCKS:
            blocks = np.array_split(cand, _BLOCKS)
            V = np.zeros((len(blocks), N + K))
            for i, bl in enumerate(blocks):
                V[i, bl] = t[bl]
            est = numerical.directional_derivative(fns["dot_c"], np.repeat(z[None], len(blocks), 0), V)
            gb = np.asarray([[np.dot(g[bl], t[bl])] for bl in blocks])
            mag = np.abs(est.value) + np.concatenate([dot_size(size[bl], t[bl]) for bl in blocks])[:, None]
            nb = np.concatenate([dot_size(nv[bl], t[bl]) for bl in blocks])[:, None]
            bad, err, exp, _ = self._judge("vjp", gb, est, mag, est.converged, tier, noise=nb)
            if not bad.any():
                return []
            with np.errstate(all="ignore"):
                tol = tolerance(1.0, tier.atol, tier.rtol, mag, MARGIN * est.error + NOISE_FACTOR * nb)
                excess = np.where(bad, np.abs(gb - exp) / tol, -np.inf)[:, 0]
            cand = blocks[int(np.argmax(excess))]
        Vr = np.zeros((cand.size, N + K))
        Vr[np.arange(cand.size), cand] = 1.0
        er = numerical.directional_derivative(fns["dot_c"], np.repeat(z[None], cand.size, 0), Vr)
        mag_r = np.abs(er.value) + size[cand][:, None]
        br, errr, expr, grr = self._judge(
            "vjp", g[cand][:, None], er, mag_r, er.converged, tier, noise=nv[cand][:, None]
        )
        return [
            (int(cand[i]), float(expr[i, 0]), float(grr[i, 0]), float(errr[i, 0])) for i in np.flatnonzero(br[:, 0])
        ]

    def float64_at(self, mode, x, t, c, s):
        """fn's own float64 JVPs and VJP by the sweep's programs (:func:`own64`), not fn's program anew."""
        if mode in ("jvp", "vjp"):
            out = own64(self.fns, x[None], t[None], c[None], {mode})
            if mode in out:
                return np.ravel(out[mode][0])
        return super().float64_at(mode, x, t, c, s)

    def describe(self, mode, e):
        if mode.removesuffix(IN64) == "vjp.t":
            return None, "random cotangent pulled back and dotted with a random tangent"
        return super().describe(mode, e)

    def truth_note(self) -> str:
        b = np.concatenate(self.bounds) if self.bounds else np.zeros(1)
        parts = [
            "numerical (reference=None): "
            + (
                "values from fn in float64; "
                if self.dtype != "float64"
                else "values not judged (fn in float64 is the function itself); "
            )
            + "derivatives by Richardson-extrapolated central differences of fn in float64 along the "
            f"probes' directions; relative error bound median {np.median(b):.1e}, 99th percentile "
            f"{np.percentile(b, 99):.1e} (where the truth exceeds atol); a disagreement fails only beyond "
            f"the tolerance plus {MARGIN:g}x that bound"
        ]
        if self.localised:
            parts.append(f"; {self.localised} failing VJP row(s) searched block by block for the entry that fails")
        return "".join(parts)
