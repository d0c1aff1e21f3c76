"""``deltaprop train``: data → preprocessing → network → fit, with progress, checkpoints,
Ctrl-C that keeps the best parameters, a metrics table, the model file and a plot."""

from __future__ import annotations

import click
from click.core import ParameterSource

from ..errors import ConfigError, ModelFileError
from ..training import TrainingInterrupted
from . import common, report
from .session import SOLVERS, Session

# Settings that define a run; a resumed run must keep them (the data may be given again).
RUN_KEYS = (
    "target", "features", "task", "impute", "hidden", "activation", "solver",
    "learning_rate", "l2", "batch_size", "validation", "seed", "dtype",
)  # fmt: skip
DEFAULT_DATA = "spiral"
DEFAULT_EPOCHS = 3000
SMALL_WORK = 50_000_000  # rows × parameters per step below which one BLAS thread is fastest


@click.command()
@click.argument("data", required=False)
@click.option("--target", help="target column (default: the last column)")
@click.option("--features", help="input columns, comma-separated (default: all but the target)")
@click.option(
    "--task",
    type=click.Choice(["auto", "classification", "regression"]),
    default="auto",
    show_default=True,
    help="auto: classification for text and few whole-number values, else regression",
)
@click.option("--impute", type=click.Choice(["mean", "median"]), help="fill missing values")
@common.hidden_option("64,64")
@common.activation_option("tanh")
@click.option("--solver", type=click.Choice(SOLVERS), default="gd", show_default=True)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="step size η > 0 (default: gd 0.5, or 0.2 for regression; momentum 0.1; adam 0.01)",
)
@click.option("--l2", type=click.FloatRange(min=0), default=0.0, show_default=True, help="λ ≥ 0")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help=f"total epochs of the run, also when resuming (default {DEFAULT_EPOCHS}; "
    "lbfgs: iterations)",
)
@click.option("--batch-size", type=common.BatchSize(), default="full", show_default=True)
@click.option(
    "--validation",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.2,
    show_default=True,
    help="fraction of rows held out",
)
@click.option("--seed", type=int, default=0, show_default=True, help="split, init and shuffling")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32")
@click.option("--out", default="model.safetensors", show_default=True, help="model file")
@click.option("--plot", default="curves.png", show_default=True, help="training plot")
@click.option("--no-plot", is_flag=True, help="do not write the plot")
@click.option("--checkpoint", help="checkpoint file (full training state)")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="epochs between checkpoints (0: only at the end)",
)
@click.option("--resume", help="continue the run saved in this checkpoint")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="threads for BLAS and for splitting a big step's rows "
    "(default: 1 for small problems, where more threads only contend)",
)
@click.option(
    "--track-sharpness",
    type=click.IntRange(min=1),
    help="record the sharpness λ_max(∇²J) every N epochs and plot it against 2/η",
)
@click.option(
    "--scheduler",
    help="compute each full-batch gradient on a Dask cluster: tcp://host:8786, or 'local'",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress bar, table or notes")
@click.pass_context
def train(ctx: click.Context, **options) -> int:
    """Train a network on DATA: a CSV/TSV/Parquet/.npz file or a built-in dataset
    (default: the 3-arm spiral, full-batch gradient descent, > 95% accuracy in seconds).

    Writes the model (--out) and a plot of the training curves (--plot). Ctrl-C stops
    cleanly: the best parameters so far are written and the exit status is 130.
    """
    options["features"] = _feature_list(options["features"])
    resumed = _resume_settings(ctx, options)
    options["data"] = options["data"] or DEFAULT_DATA
    options["epochs"] = options["epochs"] or DEFAULT_EPOCHS
    out = common.check_output(options["out"], "--out")
    plot = (
        None
        if options["no_plot"]
        else common.check_output(options["plot"], "--plot", common.PLOT_FORMATS)
    )
    if _given(ctx, "checkpoint_every") and not (options["checkpoint"] or options["resume"]):
        raise ConfigError("--checkpoint-every needs --checkpoint PATH (where to write the state)")
    if options["solver"] == "lbfgs" and options["learning_rate"] is not None:
        common.warn("note: L-BFGS chooses its own steps; --learning-rate is ignored")
    if _given(ctx, "plot") and options["no_plot"]:
        common.warn("note: --no-plot is given, so no plot is written to --plot")
    if _given(ctx, "activation") and options["hidden"] == []:
        common.warn("note: without hidden layers (--hidden 0) --activation has no effect")
    checkpoint = options["checkpoint"] or options["resume"]
    common.check_distinct(
        {"DATA file": options["data"]},
        {
            "--out": out,
            "--plot": plot,
            "--checkpoint": common.check_output(checkpoint, "--checkpoint"),
        },
    )
    if options["solver"] == "lbfgs" and options["batch_size"]:
        raise ConfigError(
            "the lbfgs solver trains full batch; drop --batch-size or use --solver adam"
        )
    if options["solver"] == "lbfgs" and checkpoint:
        raise ConfigError(
            "the lbfgs solver cannot be checkpointed or resumed (SciPy keeps its memory); "
            "drop --checkpoint/--resume or use --solver gd"
        )
    session = Session.start({k: options[k] for k in ("data", "epochs", *RUN_KEYS)}, resumed)
    quiet = options["quiet"]
    backend = _dask_backend(options["scheduler"], options)  # a bad address: before the plan
    common.note(session.describe(), quiet)
    try:
        with _blas_threads(options["threads"], session):
            session.fit(
                checkpoint,
                options["checkpoint_every"],
                progress=not quiet,
                track_sharpness=options["track_sharpness"] or 0,
                backend=backend,
            )
        interrupted = None
    except TrainingInterrupted as stop:
        interrupted = stop
    finally:
        if backend is not None:
            backend.close()
    session.save(out)
    written = [f"model to {out}"]
    if plot:
        session.plot(plot)
        written.append(f"plot to {plot}")
    if checkpoint:
        written.append(f"checkpoint to {checkpoint}")
    if not quiet:
        report.metrics_table(session.metrics(), common.console())
    if interrupted is not None:
        resume = f"; --resume {checkpoint} continues from there" if checkpoint else ""
        common.warn(
            f"interrupted at epoch {len(session.history)}: the best parameters so far were "
            f"kept; wrote {', '.join(written)}{resume}"
        )
        return 130
    if session.history.stop_reason:
        common.note(f"stopped: {session.history.stop_reason}", quiet)
    common.note(f"wrote {', '.join(written)}", quiet)
    return 0


def _given(ctx: click.Context, key: str) -> bool:
    """Whether the option was typed on the command line (not a default)."""
    return ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE


def _feature_list(text: str | None) -> list[str] | None:
    """``--features a,b`` as ["a", "b"] (spaces around names dropped); None for all."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not any(names):
        raise ConfigError("--features is empty; name the input columns, e.g. --features a,b")
    if "" in names:
        raise ConfigError(f"--features {text!r} has an empty name; separate names by one comma")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"--features names {', '.join(map(repr, repeated))} more than once")
    return names


def _checked_run(ctx: click.Context, path: str, stored: dict) -> dict:
    """The checkpoint's run settings, each checked by its command-line option's type."""
    params = {p.name: p for p in ctx.command.params}
    checked = {}
    for key in RUN_KEYS:
        value = stored[key]
        try:
            if key == "features":  # stored as the list the command line's text was split into
                names = isinstance(value, list) and all(isinstance(v, str) for v in value)
                if value is not None and not names:
                    raise click.BadParameter("expected a list of column names")
                checked[key] = value
            else:
                checked[key] = None if value is None else params[key].type_cast_value(ctx, value)
        except (click.BadParameter, TypeError) as err:
            message = err.format_message() if isinstance(err, click.BadParameter) else err
            raise ModelFileError(
                f"{path}: the stored setting {key} = {value!r} is mangled ({message}); the "
                "file is damaged"
            ) from None
    return {**stored, **checked}


def _blas_threads(threads: int | None, session: Session):
    """A BLAS thread limit: ``threads``, or 1 when a step is too small to share (n·|θ| below
    ``SMALL_WORK``; measured on this 2-core machine under load: the default spiral run trained
    in 2.5 s with one thread and 24 s with two)."""
    from threadpoolctl import threadpool_limits

    if threads is None and len(session.train_rows) * session.network.params.size <= SMALL_WORK:
        threads = 1
    return threadpool_limits(limits=threads, user_api="blas")


def _dask_backend(scheduler: str | None, options: dict):
    """A DaskBackend for ``--scheduler`` (full-batch solvers only), or None."""
    if not scheduler:
        return None
    if options["solver"] == "lbfgs" or options["batch_size"]:
        raise ConfigError(
            "--scheduler runs full-batch gradient descent (gd, momentum, adam with "
            "--batch-size full); drop --scheduler or the mini-batch/lbfgs setting"
        )
    from ..distributed import DaskBackend

    return DaskBackend(scheduler)


def _resume_settings(ctx: click.Context, options: dict):
    """The checkpoint to resume (or None); its run settings replace the options, and an
    option given on the command line that contradicts them is refused."""
    if not options["resume"]:
        return None
    from ..checkpoint import load_checkpoint

    checkpoint = load_checkpoint(options["resume"])
    stored = checkpoint.settings.get("run")
    if not isinstance(stored, dict) or not set(RUN_KEYS) <= set(stored):
        raise ConfigError(f"{options['resume']}: not a checkpoint written by deltaprop train")
    stored = _checked_run(ctx, options["resume"], stored)
    for key in RUN_KEYS:
        if _given(ctx, key) and options[key] != stored[key]:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"{flag} {options[key]} differs from the checkpoint's {stored[key]}; "
                f"drop {flag} to resume, or start a new run without --resume"
            )
    options.update({k: stored[k] for k in RUN_KEYS})
    options["data"] = options["data"] or stored["data"]
    target = options["epochs"] or checkpoint.settings.get("epochs")
    if not isinstance(target, int) or isinstance(target, bool):
        raise ModelFileError(
            f"{options['resume']}: the stored run length {target!r} is no epoch count; pass "
            "--epochs with the run's total"
        )
    if checkpoint.epoch >= target:
        raise ConfigError(
            f"{options['resume']} is already at epoch {checkpoint.epoch}; pass --epochs "
            f"greater than {checkpoint.epoch} to train further"
        )
    options["epochs"] = target
    return checkpoint
