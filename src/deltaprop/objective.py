"""The lecture's objective J(θ) = L_S(θ) + (λ/2) Σ_h ‖W^(h)‖²_F and its gradient, over a data
source, partition by partition and chunk by chunk.

The sums Σ_i ℓ_i and Σ_i ∇ℓ_i come from a *backend* (``Backend``: prepare / gradient_sum /
close). ``LocalBackend``, the in-process chunk loop, is the default; ``DaskBackend`` runs the
same ``partition_sum`` on Dask workers. Both combine the partitions' sums in partition order,
so the same partitions give the same bits.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from .backprop import Workspace, loss_and_grad_sum
from .errors import ConfigError
from .fused import kernels
from .network import Network
from .sources import (
    ArraySource,
    DaskSource,
    Source,
    check_data,
    check_targets,
    even_split,
    open_source,
)
from .threads import available_threads, run_parallel, single_threaded_blas

__all__ = [
    "Backend",
    "Evaluation",
    "GradientFinish",
    "LocalBackend",
    "Objective",
    "Prepared",
    "check_data",
]
__all__ += ["check_l2", "check_targets", "partition_sum"]

DEFAULT_CHUNK = 8192
# A thread's share of a step must outweigh handing it over (~0.35 ms here): measured on this
# 2-core machine, 2 threads against 1 per full-batch step: regression 10-64-64-1 at n = 4,000
# even, 8,000 1.5x, 20,000 1.3x; digits 64-64-10 at 1,440 0.7x, 5,760 1.1x; toy 2-16-16-2 at
# 1,000 0.3x, 16,000 1.1x; mnist-shaped 784-256-128-10 at 1,024 1.1x (BLAS held at one
# thread for the run; Adam's 200-row batches split in two: 0.75x). A thread takes at least
# 2^24 multiply-adds (rows × weights) and 512 rows: regression splits from n = 6,990,
# digits from 7,084, toy from 104,858, mnist-shaped from 1,024.
MIN_WORK_PER_THREAD = 1 << 24
MIN_ROWS_PER_THREAD = 512


@dataclass
class Evaluation:
    """What the last call measured: J, the data loss L_S, correct count, n and Σ w_i."""

    objective: float = float("nan")
    loss: float = float("nan")
    correct: int = 0
    n: int = 0
    weight: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")


@dataclass(frozen=True)
class GradientFinish:
    """What turns the sums Σ_i w_i ∇ℓ_i into g: g ← sums · scale + λ[w; 0], scale = 1/Σ_i w_i
    (``scratch``: ``n_weights`` entries for the NumPy path's λw)."""

    scale: float
    l2: float
    n_weights: int
    scratch: np.ndarray

    def apply(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Finish ``grad`` in place (λw read from ``params``)."""
        w = params[: self.n_weights]
        compiled = kernels() if self.l2 else None
        if compiled is not None:  # one pass, the same bits as the NumPy lines below
            dtype = grad.dtype.type
            compiled.scale_and_decay(grad, w, dtype(self.scale), dtype(self.l2))
            return
        grad *= self.scale
        if self.l2:
            np.multiply(w, self.l2, out=self.scratch)
            grad[: self.n_weights] += self.scratch


@dataclass
class Prepared:
    """A source made ready on a backend: n rows, Σ w_i, the block height, backend state and
    the number of threads of this process that share each sum (more than one: BLAS is to be
    kept single-threaded, see ``threads``)."""

    backend: Backend
    source: Source
    n: int
    weight: float
    rows: int
    state: Any = None
    threads: int = 1


class Backend(Protocol):
    """Where the sums over the data are computed.

    ``prepare`` validates the source and makes it ready (workspaces, data resident on
    workers); ``gradient_sum`` returns (Σ_i ℓ_i, n correct) at the network's current θ and
    writes Σ_i ∇ℓ_i into ``grad`` (unless it is None); ``close`` releases what was prepared.
    """

    def prepare(self, network: Network, source: Source, rows: int) -> Prepared: ...

    def gradient_sum(
        self, network: Network, prepared: Prepared, grad: np.ndarray | None
    ) -> tuple[float, int]: ...

    def close(self) -> None: ...


def partition_sum(
    network: Network, blocks: Iterable, grad: np.ndarray | None, workspace: Workspace
) -> tuple[float, int]:
    """(Σ ℓ_i, n correct) over one partition's blocks, Σ ∇ℓ_i written into ``grad``.

    Blocks are added in order: the first block's kernel call writes ``grad``, later ones add.
    """
    loss, correct = 0.0, 0
    for i, (X, Y, w) in enumerate(blocks):
        block_loss, block_correct = loss_and_grad_sum(network, X, Y, grad, workspace, i > 0, w)
        loss += block_loss
        correct += block_correct
    return loss, correct


class LocalBackend:
    """The in-process chunk loop: every partition's blocks through the kernel, one by one,
    and the partition sums added in order. Memory is one ``Workspace`` of ``rows`` rows
    (shared out among the threads of a split step, below).

    Arrays given without partitions are split into one row range per thread when each range
    is worth a thread: rows × weights ≥ ``MIN_WORK_PER_THREAD`` multiply-adds and rows ≥
    ``MIN_ROWS_PER_THREAD`` (``threads``: default the BLAS thread count the caller allows,
    which needs threadpoolctl; an explicit count splits any in-memory arrays). Each range
    runs through the kernel in its own thread with single-threaded BLAS and the range sums
    are added in order, so a given thread count always gives the same bits. The threads
    share the chunk: each works through blocks of ``rows`` / threads rows, so the workspaces
    together stay O(chunk × width), plus a gradient buffer per extra thread (measured: the
    wide net as fast with 2,048 to 8,192 rows per thread).
    """

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        self.threads = None if threads is None else int(threads)
        self._workspaces: list[Workspace] = []
        self._network: Network | None = None
        self._rows = 0  # the workspaces' height
        self._feature_major = True  # the workspaces' hidden layers
        self._partials: list[np.ndarray] = []

    def prepare(self, network: Network, source: Source, rows: int) -> Prepared:
        weight, split = source.check(network, rows), self._split(network, source)
        threads = len(split.partitions) if split is not None else 1
        return Prepared(self, source, len(source), weight, rows, split, threads)

    def gradient_sum(
        self, network: Network, prepared: Prepared, grad: np.ndarray | None
    ) -> tuple[float, int]:
        split: ArraySource | None = prepared.state
        if split is None:
            return self._in_turn(network, prepared.source, prepared.rows, grad)
        count = len(split.partitions)
        rows = min(max(prepared.rows // count, 1), max(split.partitions))
        workspaces = self._workspaces_for(network, rows, count)
        outs = [grad, *self._partials_like(grad, count - 1)] if grad is not None else [None] * count
        tasks = [
            partial(partition_sum, network, split.blocks(network, p, rows), outs[p], workspaces[p])
            for p in range(count)
        ]
        loss, correct = 0.0, 0
        for part_loss, part_correct in run_parallel(tasks):
            loss += part_loss
            correct += part_correct
        if grad is not None:
            for out in outs[1:]:
                grad += out
        return loss, correct

    def close(self) -> None:
        self._workspaces, self._network, self._rows, self._partials = [], None, 0, []
        self._feature_major = True

    def threads_for(self, network: Network, source: Source, rows: int | None = None) -> int:
        """How many threads sum ``source`` (or an evaluation of ``rows`` of its rows)."""
        if type(source) is not ArraySource or not source.split:  # arrays in memory only
            return 1
        n = len(source) if rows is None else rows
        if self.threads is not None:
            return min(self.threads, n)
        per_thread = max(MIN_WORK_PER_THREAD // max(network.n_weights, 1), MIN_ROWS_PER_THREAD)
        worth = n // per_thread  # threads the rows are worth; BLAS is asked only if ≥ 2
        return min(available_threads(), worth) if worth > 1 else 1

    def _split(self, network: Network, source: Source) -> ArraySource | None:
        """The rows as one partition per thread, or None to sum them in the calling thread."""
        threads = self.threads_for(network, source)
        if threads < 2:
            return None
        X, Y, w = source.X, source.Y, source.weights
        return ArraySource(X, Y, w, partitions=even_split(len(source), threads), checked=True)

    def _in_turn(
        self, network: Network, source: Source, rows: int, grad: np.ndarray | None
    ) -> tuple[float, int]:
        (ws,) = self._workspaces_for(network, min(rows, max(source.partitions)), 1)
        loss, correct, first = 0.0, 0, True
        for p, size in enumerate(source.partitions):
            if size == 0:
                continue
            out = grad if first or grad is None else self._partials_like(grad, 1)[0]
            part_loss, part_correct = partition_sum(
                network, source.blocks(network, p, rows), out, ws
            )
            if not first and grad is not None:
                grad += out
            loss += part_loss
            correct += part_correct
            first = False
        return loss, correct

    def _workspaces_for(self, network: Network, rows: int, count: int) -> list[Workspace]:
        """``count`` workspaces, all of the same height of at least ``rows`` rows; hidden
        layers feature-major for one thread with multi-threaded BLAS, row-major for the
        threads of a split sum (each with single-threaded BLAS: see ``Workspace``)."""
        feature_major = count == 1
        kept = self._network is network and self._rows >= rows
        kept = kept and self._feature_major == feature_major
        if not kept or len(self._workspaces) < count:
            if not kept:
                self._workspaces, self._network, self._rows = [], network, rows
                self._feature_major = feature_major
            missing = count - len(self._workspaces)
            self._workspaces += [
                Workspace(network, self._rows, feature_major) for _ in range(missing)
            ]
        return self._workspaces[:count]

    def _partials_like(self, grad: np.ndarray, count: int) -> list[np.ndarray]:
        if self._partials and self._partials[0].shape != grad.shape:
            self._partials = []
        while len(self._partials) < count:
            self._partials.append(np.empty_like(grad))
        return self._partials[:count]


class Objective:
    """J = (1/n) Σ_i ℓ_i + (λ/2)‖w‖², biases unpenalised.

    g = (1/n) Σ_i ∇ℓ_i + λ[w; 0] is accumulated over row chunks of ``chunk_size``, so
    memory is O(chunk × width) for any n and every chunk size gives the same result.
    With ``sample_weight`` w, L_S = Σ_i w_i ℓ_i / Σ_i w_i (and likewise its gradient).
    The data may be arrays or any ``Source`` (memory-mapped files, shards, Dask arrays);
    ``backend`` computes the sums (default: in process, or the current Dask client for Dask
    data). The returned gradient is a buffer owned by the objective, overwritten by the next call.
    """

    def __init__(
        self,
        network: Network,
        l2: float = 0.0,
        chunk_size: int | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.network = network
        self.l2 = check_l2(l2)
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.chunk_size = int(chunk_size or DEFAULT_CHUNK)
        self.backend = backend
        self.grad = np.zeros_like(network.params)
        self._penalty = np.empty(network.n_weights, network.dtype)
        self._local = LocalBackend()
        self._dask: Backend | None = None
        self._prepared: Prepared | None = None
        self.last = Evaluation()
        self.finish: GradientFinish | None = None  # the last evaluation's

    def value_and_grad(self, X, Y=None, sample_weight=None) -> tuple[float, np.ndarray]:
        """(J, g) at the network's current parameters."""
        return self.evaluate(self.open(X, Y, sample_weight), with_grad=True)

    def value(self, X, Y=None, sample_weight=None) -> float:
        """J at the network's current parameters."""
        return self.evaluate(self.open(X, Y, sample_weight), with_grad=False)[0]

    def open(self, X, Y=None, sample_weight=None) -> Source:
        """The validated source for arrays, paths, memory maps, shards or Dask arrays."""
        return open_source(self.network, X, Y, sample_weight)

    def evaluate(
        self,
        X,
        Y=None,
        with_grad: bool = True,
        sample_weight: np.ndarray | None = None,
        finish: bool = True,
    ) -> tuple[float, np.ndarray]:
        """(J, g) for already validated arrays (or a ``Source``); the loop ``fit`` runs.

        ``finish=False`` leaves the sums Σ_i w_i ∇ℓ_i in the buffer and their last step in
        ``self.finish``, for an optimizer that finishes g in its own pass over θ
        (``Optimizer.finish_and_step``)."""
        source = X if isinstance(X, Source) else ArraySource(X, Y, sample_weight, checked=True)
        prepared = self.prepare(source)
        if prepared.threads > 1:
            with single_threaded_blas():
                return self._evaluate(prepared, with_grad, finish)
        return self._evaluate(prepared, with_grad, finish)

    def _evaluate(
        self, prepared: Prepared, with_grad: bool, finish: bool
    ) -> tuple[float, np.ndarray]:
        net = self.network
        grad = self.grad if with_grad else None
        loss, correct = prepared.backend.gradient_sum(net, prepared, grad)
        total = prepared.weight
        loss /= total
        w = net.params[: net.n_weights]
        J = loss + 0.5 * self.l2 * float(np.vdot(w, w)) if self.l2 else loss
        self.finish = GradientFinish(1.0 / total, self.l2, net.n_weights, self._penalty)
        if with_grad and finish:
            self.finish.apply(net.params, self.grad)
        self.last = Evaluation(J, loss, correct, prepared.n, total)
        return J, self.grad

    def blas_for_run(self, source: Source, rows: int | None = None) -> AbstractContextManager:
        """The BLAS setting for many evaluations in a row (``fit``'s loop) of ``source``, or
        of ``rows`` of its rows at a time: single-threaded from first to last when the rows
        are summed by several threads, so that no multi-threaded call in between leaves BLAS
        threads spinning against them."""
        backend = self.backend_for(source)
        split = isinstance(backend, LocalBackend) and (
            backend.threads_for(self.network, source, rows) > 1
        )
        return single_threaded_blas() if split else nullcontext()

    def prepare(self, source: Source) -> Prepared:
        """``source`` validated and made ready on the backend (kept until another source)."""
        if self._prepared is None or self._prepared.source is not source:
            self._prepared = self.backend_for(source).prepare(self.network, source, self.chunk_size)
        return self._prepared

    def backend_for(self, source: Source) -> Backend:
        """The backend given, else Dask's current client for Dask data, else in process."""
        if self.backend is not None:
            return self.backend
        if isinstance(source, DaskSource):
            if self._dask is None:
                from .distributed import DaskBackend

                self._dask = DaskBackend()
            return self._dask
        return self._local


def check_l2(l2: float) -> float:
    """λ ≥ 0 and finite."""
    try:
        value = float(l2)
    except (TypeError, ValueError):
        raise ConfigError(f"l2 must be a number, got {l2!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"l2 (λ) must be a finite number ≥ 0, got {l2!r}")
    return value
