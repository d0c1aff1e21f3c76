"""Exact full-batch gradients on a Dask cluster: ``DaskBackend``.

The data stay on the workers across steps: every partition is built by a loader task
(a Dask chunk, a file read, or an array slice held in the task graph — never
``client.scatter``), validated there and kept in memory, so the scheduler can rebuild a lost
worker's partitions from the graph. Each step sends θ once (one task that the workers
share); every worker runs the core ``partition_sum`` (the per-chunk kernel over a
partition's blocks) on its partitions;
the per-partition sums (Σ ℓ_i, n correct, Σ ∇ℓ_i) are gathered and added at the client in
partition order — the order ``LocalBackend`` uses, so results do not depend on which worker
holds what, and a step recomputed after a worker died gives the same bits. The optimizer
step runs on the client.

Dask and distributed are imported only when a ``DaskBackend`` is made (the ``dask`` extra).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import numpy as np

from .backprop import Workspace
from .errors import ConfigError, DeltapropError
from .network import Network
from .objective import Prepared, partition_sum
from .sources import (
    ArraySource,
    DaskSource,
    NpyRows,
    Source,
    blocks_weight,
    check_block,
    check_total,
    even_split,
)

START_A_CLIENT = (
    "start one with `from distributed import Client; client = Client()` (a local cluster) "
    "or `Client('tcp://host:8786')`, then pass backend=deltaprop.DaskBackend(client)"
)


class DaskBackend:
    """The objective's sums on the workers of a Dask cluster.

    ``client``: a ``distributed.Client``; a scheduler address (``"tcp://host:8786"``, reached
    within ``timeout`` seconds); ``"local"`` to start a ``LocalCluster`` (one single-threaded
    worker process per core, or ``n_workers``); or None for the current client.
    ``reduce``: ``"flat"`` gathers the per-partition sums at the client (faster for small θ,
    and bit-identical to the in-process engine), ``"tree"`` adds them pairwise on the
    workers first. A step whose tasks were lost with a worker is recomputed (``retries``).
    """

    def __init__(
        self,
        client=None,
        *,
        reduce: str = "flat",
        timeout: float = 10.0,
        n_workers: int | None = None,
        retries: int = 3,
    ) -> None:
        if reduce not in ("flat", "tree"):
            raise ConfigError(f"reduce must be 'flat' or 'tree', got {reduce!r}")
        self.reduce, self.retries = reduce, int(retries)
        self.client, self._owned = connect(client, timeout, n_workers)
        self._prepared: dict = {}

    def prepare(self, network: Network, source: Source, rows: int) -> Prepared:
        """Load, validate and persist every partition on the workers. Dask data are kept
        (by their Dask names) until ``close``; other sources as long as the handle lives."""
        from dask import delayed

        key = (getattr(source, "key", None), rows, spec_key(network))
        if key in self._prepared:
            return self._prepared[key]
        check = delayed(check_partition, pure=True)
        threads = max(1, sum(self.client.nthreads().values()))
        parts = [
            check(network_spec(network), part, prefix, first)
            for part, (prefix, first) in loaders(source, threads)
        ]
        futures = self.client.compute(parts)
        weights = self.client.gather(self.client.map(partition_weight, futures, rows=rows))
        total = check_total(sum(weights)) if source.weighted else float(len(source))
        prepared = Prepared(self, source, len(source), total, rows, futures)
        if key[0] is not None:
            self._prepared[key] = prepared
        return prepared

    def gradient_sum(
        self, network: Network, prepared: Prepared, grad: np.ndarray | None
    ) -> tuple[float, int]:
        """Σ ℓ_i and n correct; Σ ∇ℓ_i into ``grad``. θ is sent once per step."""
        for attempt in range(self.retries + 1):
            try:
                results = self._partial_sums(network, prepared, grad is not None)
                break
            except (CancelledError, OSError) as err:  # a worker was lost: redo the step
                if attempt == self.retries:
                    raise DeltapropError(
                        f"a gradient step failed {attempt + 1} times as Dask workers were lost "
                        f"({err}); check the cluster's workers and memory"
                    ) from err
                time.sleep(0.2 * 2**attempt)  # let the scheduler notice and reschedule
        loss, correct = 0.0, 0
        for i, (part_loss, part_correct, part_grad) in enumerate(results):
            loss += part_loss
            correct += part_correct
            if grad is not None:
                if i == 0:
                    np.copyto(grad, part_grad)
                else:
                    grad += part_grad
        return loss, correct

    def _partial_sums(self, network: Network, prepared: Prepared, with_grad: bool) -> list:
        client = self.client
        # θ enters the graph once (a task, not a scatter: a lost copy is rebuilt from the graph)
        theta = client.submit(np.array, network.params.copy(), pure=False)
        parts = client.map(
            partition_gradient,
            prepared.state,
            spec=network_spec(network),
            theta=theta,
            rows=prepared.rows,
            with_grad=with_grad,
            pure=False,
        )
        while self.reduce == "tree" and len(parts) > 1:
            pairs = [parts[i : i + 2] for i in range(0, len(parts), 2)]
            parts = [client.submit(add, *p, pure=False) if len(p) == 2 else p[0] for p in pairs]
        return client.gather(parts)

    def close(self) -> None:
        """Release the persisted data; close the client and cluster if this backend made them."""
        self._prepared.clear()
        if self._owned:
            cluster = getattr(self.client, "cluster", None)
            self.client.close()
            if cluster is not None:
                cluster.close()
            self._owned = False

    def __deepcopy__(self, memo) -> DaskBackend:
        return self  # a handle on a cluster: copies (e.g. scikit-learn's clone) share it

    def __enter__(self) -> DaskBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskBackend({self.client!r}, reduce={self.reduce!r})"


def connect(client, timeout: float, n_workers: int | None):
    """(client, owned): the given client, a new one for an address or "local", or the current."""
    import distributed

    if client is None:
        try:
            return distributed.get_client(), False
        except ValueError:
            raise ConfigError(
                f"Dask data need a Dask client and none is running; {START_A_CLIENT}"
            ) from None
    if isinstance(client, str) and client == "local":
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        return distributed.Client(cluster), True
    if isinstance(client, str):
        try:
            return distributed.Client(client, timeout=timeout), True
        except ValueError as err:  # not an address at all, e.g. no port
            raise ConfigError(
                f"{client!r} is not a Dask scheduler address ({err}); write it as "
                "tcp://host:8786, or use 'local' for a cluster on this machine"
            ) from None
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {client!r} within {timeout:g} s ({err}); "
                "check the address, or start a scheduler with `dask scheduler` and workers with "
                "`dask worker tcp://host:8786`, or use 'local' for a cluster on this machine"
            ) from None
    if not isinstance(client, distributed.Client):
        raise ConfigError(f"DaskBackend needs a distributed.Client or an address, got {client!r}")
    return client, False


def loaders(source: Source, threads: int) -> list:
    """(delayed (X, Y, w), its origin for messages) per non-empty partition, built where it
    runs (no scatter). Arrays and ``.npy`` files given without partitions are split in one
    per worker thread."""
    from dask import delayed

    sizes = source.partitions
    if isinstance(source, DaskSource):
        blocks = [a.to_delayed().ravel() for a in source.arrays()]
        if len(blocks) == 2:
            blocks.append([None] * len(blocks[0]))
        parts = [delayed(tuple, pure=True)(list(b)) for b in zip(*blocks)]
    elif isinstance(source, ArraySource):
        if source.split:
            sizes = even_split(len(source), threads)
        edges = np.cumsum((0, *sizes))
        data = (source.X, source.Y, source.weights)
        parts = [
            delayed(read_all, pure=False)(*(window(d, a, b) for d in data))
            for a, b in zip(edges[:-1], edges[1:])
        ]
    else:
        parts = [delayed(source.read_partition, pure=False)(p) for p in range(len(sizes))]
    if sizes is source.partitions:
        origins = [source.origin(p) for p in range(len(sizes))]
    else:  # arrays split here, one part per thread
        origins = [("", int(start)) for start in np.cumsum((0, *sizes[:-1]))]
    return [(part, origin) for part, origin, size in zip(parts, origins, sizes) if size > 0]


def window(data, start: int, stop: int):
    """Rows start:stop of an array, or of a file without reading it (``NpyRows``)."""
    if data is None:
        return None
    if isinstance(data, NpyRows):
        itemsize = data.row_items * data.dtype.itemsize
        offset = data.offset + int(start) * itemsize
        return NpyRows(data.path, data.dtype, (int(stop - start), *data.shape[1:]), offset)
    return data[start:stop]


def read_all(X, Y, w):
    return tuple(None if d is None else np.asarray(d[0 : len(d)]) for d in (X, Y, w))


# Worker side: plain NumPy and the core kernel.

_local = threading.local()


def network_spec(network: Network) -> tuple:
    """What a worker needs to rebuild the architecture: sizes, σ records, output, dtype."""
    return (tuple(network.sizes), tuple(network.activations), network.output, network.dtype.name)


def spec_key(network: Network) -> tuple:
    names = tuple(a.name for a in network.activations)
    return (tuple(network.sizes), names, network.output.name, network.dtype.name)


def worker_network(spec: tuple, rows: int) -> tuple[Network, Workspace]:
    """This thread's network and workspace for ``spec`` (made once, then reused)."""
    cache = _local.__dict__.setdefault("cache", {})
    sizes, activations, output, dtype = spec
    key = (sizes, tuple(a.name for a in activations), output.name, dtype)
    if key not in cache or cache[key][1].rows < rows:
        net = Network(sizes, activation=list(activations), output=output, dtype=dtype, seed=0)
        cache[key] = (net, Workspace(net, rows))
    return cache[key]


def check_partition(spec: tuple, part: tuple, prefix: str = "", first_row: int = 0) -> tuple:
    """The partition validated and encoded for the network (labels as integers, w in dtype);
    messages name its place (``Source.origin``)."""
    network, _ = worker_network(spec, 1)
    return check_block(network, *part, first_row=first_row, prefix=prefix)


def partition_weight(part: tuple, rows: int) -> float:
    """Σ w_i over the partition's blocks, in block order (as ``Source.check`` adds them)."""
    return blocks_weight(ArraySource(*part).raw_blocks(0, rows))


def partition_gradient(part: tuple, spec: tuple, theta: np.ndarray, rows: int, with_grad: bool):
    """(Σ ℓ_i, n correct, Σ ∇ℓ_i or None) over one persisted partition at θ."""
    network, workspace = worker_network(spec, min(rows, len(part[0])))
    np.copyto(network.params, theta)
    grad = np.empty_like(network.params) if with_grad else None
    blocks = ArraySource(*part, checked=True).raw_blocks(0, rows)
    loss, correct = partition_sum(network, blocks, grad, workspace)
    return loss, correct, grad


def add(a: tuple, b: tuple) -> tuple:
    """Two partial sums added (the tree reduce's node)."""
    grad = None if a[2] is None else a[2] + b[2]
    return a[0] + b[0], a[1] + b[1], grad
