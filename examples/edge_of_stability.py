"""Progressive sharpening and the edge of stability with full-batch gradient descent.

For each learning rate η a 2×200 tanh network is trained by the lecture's rule
θ ← θ − η g on 2,000 points (squared loss on one-hot targets, as in Cohen et al., ICLR
2021), and ``SharpnessTracker`` measures the sharpness λ_max(∇²J) every few steps (Lanczos
on exact Hessian-vector products). On a quadratic, GD is stable only while λ_max < 2/η;
on the network λ_max rises until it reaches 2/η and then hovers there, while the loss keeps
falling, though no longer monotonically. The figure (loss and sharpness against the step,
with the 2/η lines) is saved to ``--output``.

    python examples/edge_of_stability.py                                 # full size, minutes
    python examples/edge_of_stability.py --n 300 --width 32 --steps 300  # quick look
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import deltaprop as dp
from deltaprop import datasets


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist1d", help="built-in dataset (mnist1d, digits)")
    parser.add_argument("--n", type=int, default=2000, help="number of training points")
    parser.add_argument("--width", type=int, default=200, help="units per hidden layer")
    parser.add_argument("--depth", type=int, default=2, help="number of hidden layers")
    parser.add_argument("--etas", type=float, nargs="+", default=[0.06, 0.08, 0.1])
    parser.add_argument("--steps", type=int, default=3000, help="full-batch GD steps per η")
    parser.add_argument("--every", type=int, default=25, help="measure λ_max every N steps")
    parser.add_argument("--loss", choices=["mse", "ce"], default="mse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="edge_of_stability.png", help="figure path")
    return parser.parse_args(argv)


def train(args: argparse.Namespace) -> dict[float, dp.History]:
    """One fresh network (same initial θ) per η, trained with a SharpnessTracker."""
    data = datasets.load(args.dataset, n=args.n, seed=args.seed)
    X, K = data.X, data.n_classes
    Y, output = (np.eye(K)[data.y], "identity") if args.loss == "mse" else (data.y, "softmax")
    sizes = [X.shape[1]] + [args.width] * args.depth + [K]
    histories = {}
    for eta in args.etas:
        net = dp.Network(sizes, activation="tanh", output=output, seed=args.seed)
        tracker = dp.SharpnessTracker(every=args.every, data=(X, Y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dp.StepSizeWarning)  # the summary shows it
            histories[eta] = dp.fit(
                net, X, Y, optimizer=dp.GradientDescent(eta), epochs=args.steps,
                callbacks=[tracker], on_divergence="warn",
            )  # fmt: skip
    return histories


def summarize(histories: dict[float, dp.History]) -> list[dict]:
    """Per η: λ_max at the start, its minimum and maximum after it, its mean over the last
    third of the run relative to 2/η, the loss at the start and end, and how often it rose."""
    rows = []
    for eta, history in histories.items():
        sharp = history["sharpness"]
        steps = np.flatnonzero(np.isfinite(sharp))
        late = sharp[steps[steps >= 2 * len(history) // 3]]
        loss = history["loss"]
        rows.append(
            {
                "eta": eta,
                "threshold": 2 / eta,
                "initial_sharpness": float(sharp[0]),
                "min_sharpness": float(np.nanmin(sharp[1:])),
                "max_sharpness": float(np.nanmax(sharp[1:])),
                "late_ratio": float(late.mean() * eta / 2),
                "initial_loss": float(loss[0]),
                "final_loss": float(loss[-1]),
                "loss_increases": int(np.count_nonzero(np.diff(loss) > 0)),
                "steps": len(history),
            }
        )
    return rows


def plot_sharpness(history, ax, color=None, label=None):
    steps = np.flatnonzero(np.isfinite(history["sharpness"]))
    (line,) = ax.plot(steps, history["sharpness"][steps], color=color, label=label)
    ax.plot(steps, history["stability_threshold"][steps], "--", color=line.get_color(), lw=1)
    return ax


def plot(histories: dict[float, dp.History], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for eta, history in histories.items():
        (line,) = top.plot(history["loss"], lw=1, label=f"η = {eta:g}")
        plot_sharpness(history, ax=bottom, color=line.get_color(), label=f"η = {eta:g}")
    top.set(yscale="log", ylabel="training loss L_S", title="Full-batch gradient descent")
    top.legend()
    bottom.set(xlabel="step", ylabel="sharpness λ_max")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    histories = train(args)
    rows = summarize(histories)
    print(f"{'η':>6} {'2/η':>7} {'λ₀':>7} {'min λ':>7} {'max λ':>7} {'late λ·η/2':>10} "
          f"{'loss₀':>7} {'loss_T':>7} {'loss ups':>8}")  # fmt: skip
    for r in rows:
        print(
            f"{r['eta']:>6g} {r['threshold']:>7.2f} {r['initial_sharpness']:>7.2f} "
            f"{r['min_sharpness']:>7.2f} {r['max_sharpness']:>7.2f} {r['late_ratio']:>10.3f} "
            f"{r['initial_loss']:>7.4f} {r['final_loss']:>7.4f} {r['loss_increases']:>8d}"
        )
    plot(histories, args.output)
    print(f"figure saved to {args.output}")
    return rows


if __name__ == "__main__":
    main()
