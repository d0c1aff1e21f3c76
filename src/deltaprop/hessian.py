"""Exact Hessian-vector products ∇²J·v by Pearlmutter's R-operator applied to the forward
pass and the δ recursion, and the sharpness λ_max(∇²J) by Lanczos on them.

R{·} = d/dε (·)(θ + εv) at ε = 0, for a direction v = [V^(1), …, V^(D) | v_b^(1), …, v_b^(D)]
laid out like θ. With samples as rows and R{Z^(0)} = R{X} = 0, the forward pass gives

    R{A^(h)} = R{Z^(h−1)} W^(h)ᵀ + Z^(h−1) V^(h)ᵀ + v_b^(h),    R{Z^(h)} = σ′(A^(h)) ∘ R{A^(h)};

the output error δ^(D) = f − Ỹ gives R{δ^(D)} = R{f}, the output's Jacobian applied to R{a}:

    softmax  f ∘ (R{a} − (f · R{a}))   identity  R{a}   sigmoid  f ∘ (1 − f) ∘ R{a}   exp  f ∘ R{a};

and δ^(h−1) = σ′(A^(h−1)) ∘ E^(h), E^(h) = δ^(h) W^(h), gives (σ″ from the activation record)

    R{δ^(h−1)} = σ″(A^(h−1)) ∘ R{A^(h−1)} ∘ E^(h) + σ′(A^(h−1)) ∘ (R{δ^(h)} W^(h) + δ^(h) V^(h)).

Finally ∇²J·v = R{g}:

    R{∇_{W^(h)} J} = (1/n)(R{δ^(h)}ᵀ Z^(h−1) + δ^(h)ᵀ R{Z^(h−1)}) + λ V^(h),
    R{∇_{b^(h)} J} = (1/n) Σ_i R{δ^(h)}_i.

Per layer that is about eight matrix products against the gradient's three, chunked over
rows exactly like the gradient (memory O(chunk × width)), in the network's dtype.
Sample weights w_i scale δ_i and R{δ_i} alike, and 1/n becomes 1/Σ_i w_i.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .backprop import Workspace, cast_rows
from .errors import ConfigError, DataError, DeltapropError
from .network import Network, as_generator, first_rows, layer_buffer, product_into
from .objective import Objective, check_data


def _softmax_jacobian(f, r):  # r ← f ∘ (r − (f · r))
    r -= np.einsum("ij,ij->i", f, r)[:, None]
    r *= f


def _sigmoid_jacobian(f, r):  # r ← f(1 − f) ∘ r
    r *= f
    r *= 1 - f


def _exp_jacobian(f, r):  # r ← f ∘ r
    r *= f


# R{f} = (∂f/∂a) R{a}, in place on R{a}, for each output pair (identity: R{f} = R{a})
OUTPUT_JACOBIANS: dict[str, Callable[[np.ndarray, np.ndarray], None] | None] = {
    "softmax": _softmax_jacobian,
    "sigmoid": _sigmoid_jacobian,
    "identity": None,
    "exp": _exp_jacobian,
}


class CurvatureWorkspace(Workspace):
    """The gradient's buffers plus R{A^(h)} (reused for R{δ^(h)}), R{Z^(h)} and one
    scratch block per layer."""

    def __init__(self, network: Network, rows: int) -> None:
        super().__init__(network, rows)
        widths, dtype = network.sizes[1:], network.dtype
        self.r_pre = [layer_buffer(rows, m, dtype) for m in widths]
        self.r_post = [layer_buffer(rows, m, dtype) for m in widths[:-1]]
        self.scratch = [layer_buffer(rows, m, dtype) for m in widths]
        self.cross_weights = network.split(np.empty_like(network.params))[0]


def hvp_sum(
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    workspace: CurvatureWorkspace,
    accumulate: bool = False,
    weights: np.ndarray | None = None,
) -> None:
    """Σ_i ∇²ℓ_i · v over one block of rows, written (or added) into ``out`` (the per-chunk
    kernel of ``hvp``; the formulas are in the module docstring)."""
    m, ws, D = len(X), workspace, network.n_layers
    X = cast_rows(X, ws.inputs)
    if Y.ndim == 2 or not network.output.accepts_labels:
        Y = cast_rows(Y, ws.targets)
    Z = network.forward_chunk(X, [first_rows(buf, m) for buf in ws.layers])
    V, v_b = network.split(v)
    RA = [first_rows(buf, m) for buf in ws.r_pre]  # RA[h] = R{A^(h+1)}
    RZ = [None] + [first_rows(buf, m) for buf in ws.r_post]  # RZ[h] = R{Z^(h)}, R{Z^(0)} = 0
    tmp = [first_rows(buf, m) for buf in ws.scratch]
    slopes = [first_rows(buf, m) for buf in ws.slopes]
    W = network.weights
    for h in range(D):  # R-forward
        product_into(Z[h], V[h].T, RA[h])
        if h > 0:
            product_into(RZ[h], W[h].T, tmp[h])
            RA[h] += tmp[h]
        RA[h] += v_b[h]
        if h < D - 1:
            network.activations[h].derivative(Z[h + 1], slopes[h])
            np.multiply(slopes[h], RA[h], out=RZ[h + 1])
    jacobian = _output_jacobian(network)
    if jacobian is not None:
        f = tmp[-1]
        network.output.function(Z[-1], f)
        jacobian(f, RA[-1])
    network.output.loss_and_delta(Z[-1], Y, ws.row_index[:m], weights)  # logits ← δ^(D)
    if weights is not None:
        RA[-1] *= weights[:, None]
    out_w, out_b = (ws.partial_weights, ws.partial_biases) if accumulate else network.split(out)
    delta, r_delta = Z[-1], RA[-1]
    for h in range(D - 1, -1, -1):  # R-backward
        np.matmul(r_delta.T, Z[h], out=out_w[h])
        if h > 0:
            out_w[h] += np.matmul(delta.T, RZ[h], out=ws.cross_weights[h])
        np.sum(r_delta, axis=0, out=out_b[h])
        if h == 0:
            break
        E, slope, act = first_rows(ws.deltas[h - 1], m), slopes[h - 1], network.activations[h - 1]
        product_into(delta, W[h], E)
        act.second_derivative(Z[h], slope)
        RA[h - 1] *= slope
        RA[h - 1] *= E  # σ″ ∘ R{A} ∘ E
        act.derivative(Z[h], slope)
        product_into(r_delta, W[h], RZ[h])  # R{Z^(h)} is spent: reuse its block
        product_into(delta, V[h], tmp[h - 1])
        RZ[h] += tmp[h - 1]
        RZ[h] *= slope
        RA[h - 1] += RZ[h]  # R{δ^(h)}
        E *= slope  # δ^(h)
        delta, r_delta = E, RA[h - 1]
    if accumulate:
        out += ws.partial


def _output_jacobian(network: Network):
    name = network.output.name
    if name not in OUTPUT_JACOBIANS:
        raise ConfigError(
            f"no Hessian-vector product for output {name!r}; "
            f"supported outputs: {', '.join(OUTPUT_JACOBIANS)}"
        )
    return OUTPUT_JACOBIANS[name]


class Hessian:
    """∇²J = (1/n) Σ_i ∇²ℓ_i + λ[I 0; 0 0] as a linear operator on flat vectors laid out
    like ``network.params``, always at the network's current parameters.

    Validates the data once and keeps one workspace, so repeated products (Lanczos) cost
    one R-forward/R-backward pass over the rows each and allocate nothing per chunk.
    """

    def __init__(self, network: Network, X, Y, l2=0.0, sample_weight=None, chunk_size=None):
        objective = Objective(network, l2=l2, chunk_size=chunk_size)  # validates λ and chunk
        self.network, self.l2, self.chunk_size = network, objective.l2, objective.chunk_size
        self.X, self.Y, self.weights = check_data(network, X, Y, sample_weight)
        n = len(self.X)
        self.total = n if self.weights is None else float(self.weights.sum())
        self._workspace = CurvatureWorkspace(network, min(n, self.chunk_size))
        _output_jacobian(network)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.network.params.size,) * 2

    def matvec(self, v, out: np.ndarray | None = None) -> np.ndarray:
        """∇²J · v in the network's dtype (into ``out`` if given)."""
        net = self.network
        v = np.asarray(v)
        if v.shape != net.params.shape:
            raise DataError(
                f"v must be a flat vector of {net.params.size} values laid out like "
                f"network.params, got shape {v.shape}"
            )
        v = np.ascontiguousarray(v, dtype=net.dtype)
        out = np.empty_like(net.params) if out is None else out
        rows, n = self._workspace.rows, len(self.X)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            w = None if self.weights is None else self.weights[start:stop]
            hvp_sum(
                net, self.X[start:stop], self.Y[start:stop], v, out, self._workspace, start > 0, w
            )
        out *= 1.0 / self.total
        if self.l2:
            out[: net.n_weights] += self.l2 * v[: net.n_weights]
        return out

    def top_eigenpairs(
        self, k: int = 1, tol: float | None = None, seed=None, v0=None, maxiter=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k largest eigenvalues (largest first, float64) and their eigenvectors (p × k)
        by Lanczos (``eigsh``, which="LA"); a dense ``eigh`` when k ≥ p − 1."""
        linalg = _scipy_linalg()
        p = self.shape[0]
        if int(k) != k or not 1 <= k <= p:
            raise ConfigError(
                f"k must be an integer between 1 and {p} (the parameter count), got {k!r}"
            )
        k = int(k)
        if k >= p - 1:
            values, vectors = np.linalg.eigh(self.dense().astype(np.float64))
        else:
            if tol is None:
                tol = 1e-9 if self.network.dtype == np.float64 else 1e-4
            v0 = as_generator(seed).standard_normal(p) if v0 is None else v0
            operator = linalg.LinearOperator(
                self.shape, matvec=lambda v: self.matvec(np.ravel(v)), dtype=np.float64
            )
            try:
                values, vectors = linalg.eigsh(
                    operator, k, which="LA", tol=tol, v0=np.asarray(v0, np.float64), maxiter=maxiter
                )
            except linalg.ArpackError as err:
                raise DeltapropError(
                    f"Lanczos did not converge to {k} eigenvalue(s) within tol={tol:g}: {err}; "
                    "raise tol or maxiter, or measure on a subset of rows"
                ) from None
        order = np.argsort(values)[::-1][:k]
        return values[order], vectors[:, order]

    def dense(self) -> np.ndarray:
        """The full p × p matrix, one ``matvec`` per column (for small networks and tests)."""
        p = self.shape[0]
        H = np.empty((p, p), self.network.dtype)
        e = np.zeros(p, self.network.dtype)
        for j in range(p):
            e[j] = 1
            self.matvec(e, out=H[:, j])
            e[j] = 0
        return H


def hvp(
    network: Network, X, Y, v, l2: float = 0.0, sample_weight=None, chunk_size: int | None = None
) -> np.ndarray:
    """The exact Hessian-vector product ∇²J(θ)·v at the network's parameters θ, by the
    R-operator on the δ recursion (see the module docstring); same layout and dtype as θ."""
    return Hessian(network, X, Y, l2, sample_weight, chunk_size).matvec(v)


def sharpness(
    network: Network,
    X,
    Y,
    l2: float = 0.0,
    k: int = 1,
    tol: float | None = None,
    subset=None,
    seed: int | np.random.Generator | None = None,
    return_eigenvectors: bool = False,
    *,
    sample_weight=None,
    chunk_size: int | None = None,
    v0: np.ndarray | None = None,
    maxiter: int | None = None,
):
    """The k largest eigenvalues of ∇²J (largest first), λ_max = the sharpness, by Lanczos
    (``scipy.sparse.linalg.eigsh``) on a ``LinearOperator`` of exact Hessian-vector products.

    On a quadratic, gradient descent θ ← θ − η g is stable only if η < 2/λ_max.
    ``subset`` restricts J to a fixed set of rows: an integer m (m rows drawn without
    replacement with ``seed``) or an index/boolean array. ``tol`` is ARPACK's relative
    accuracy (default 1e-9 in float64, 1e-4 in float32); ``v0`` a starting vector (e.g. the
    previous top eigenvector, to warm-start a tracker). Returns the eigenvalues, or
    (eigenvalues, eigenvectors as columns p × k) with ``return_eigenvectors=True``.
    Networks with at most k + 1 parameters are solved densely.
    """
    X, Y, weights = check_data(network, X, Y, sample_weight)
    if subset is not None:
        rows = choose_rows(len(X), subset, seed)
        X, Y = X[rows], Y[rows]
        weights = None if weights is None else weights[rows]
    H = Hessian(network, X, Y, l2, weights, chunk_size)
    values, vectors = H.top_eigenpairs(k, tol=tol, seed=seed, v0=v0, maxiter=maxiter)
    return (values, vectors) if return_eigenvectors else values


def choose_rows(n: int, subset, seed=None) -> np.ndarray:
    """Row indices for ``subset``: m rows drawn without replacement (sorted), or the given
    index/boolean array."""
    if isinstance(subset, (int, np.integer)) and not isinstance(subset, bool):
        if subset < 1:
            raise ConfigError(f"subset must be a positive number of rows, got {subset}")
        if subset >= n:
            return np.arange(n)
        return np.sort(as_generator(seed).choice(n, int(subset), replace=False))
    rows = np.asarray(subset)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise DataError(f"a boolean subset must have shape ({n},), got {rows.shape}")
        rows = np.flatnonzero(rows)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
        raise DataError("subset must be a number of rows, or a non-empty index or boolean array")
    if rows.min() < -n or rows.max() >= n:
        raise DataError(f"subset indices must lie in 0..{n - 1}")
    return rows


def _scipy_linalg():
    try:
        import scipy.sparse.linalg as linalg
    except ImportError:
        raise ImportError(
            "deltaprop.sharpness needs SciPy (Lanczos via scipy.sparse.linalg.eigsh); "
            "install the extra: pip install 'deltaprop[scipy]'"
        ) from None
    return linalg
