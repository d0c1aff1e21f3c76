"""``deltaprop predict``, ``evaluate`` and ``info``: using a model file on new data.

The preprocessing stored by ``deltaprop train`` (or the playground) is applied again; a
network saved from Python without it, or an estimator's file, takes the table's first
columns (or the estimator's ``feature_names_in_``) as its inputs unchanged.
"""

from __future__ import annotations

import json
import sys

import click
import numpy as np

from ..errors import DataError, ModelFileError
from ..network import Network
from ..serialization import CheckpointGiven, load_with_metadata, write_atomically
from ..tabular import Preprocessing, pick_column
from . import common, report


def open_model(path: str, frame) -> tuple[Network, Preprocessing, dict]:
    """(network, preprocessing, metadata) of a model file, for the columns of ``frame``."""
    model, metadata = load_with_metadata(path)
    network = model if isinstance(model, Network) else model.network_
    if isinstance(metadata.get("preprocessing"), dict):
        try:
            prep = Preprocessing.from_dict(metadata["preprocessing"])
        except (TypeError, DataError) as err:
            raise ModelFileError(f"{path}: {err}; the file is damaged") from None
        if len(prep.inputs) != network.n_features:
            raise ModelFileError(
                f"{path}: the preprocessing gives {len(prep.inputs)} inputs but the network "
                f"takes {network.n_features}"
            )
        if (prep.task == "classification") != network.output.classification:
            raise ModelFileError(
                f"{path}: the preprocessing is for {prep.task} but the network's output is "
                f"{network.output.name}; the file is damaged"
            )
        if prep.task == "classification" and len(prep.classes) != network.n_outputs:
            raise ModelFileError(
                f"{path}: the preprocessing names {len(prep.classes)} classes but the network "
                f"has {network.n_outputs} outputs; the file is damaged"
            )
        return network, prep, metadata
    d = network.n_features
    names = getattr(model, "feature_names_in_", None)
    features = [str(c) for c in names] if names is not None else list(frame.columns[:d])
    if len(features) < d:
        raise DataError(
            f"{frame.attrs.get('source')} has {len(frame.columns)} columns but the model takes "
            f"{d} inputs (its file stores no column names: the first {d} columns are used)"
        )
    classes = getattr(model, "classes_", None)
    if classes is None and network.output.name == "softmax":
        classes = range(network.n_outputs)
    task = "classification" if network.output.classification else "regression"
    class_names = [str(c) for c in classes] if classes is not None else []
    prep = Preprocessing(features, "", task, [0.0] * d, [1.0] * d, classes=class_names)
    return network, prep, metadata


def _outputs(network: Network, prep: Preprocessing, frame) -> tuple[np.ndarray, np.ndarray]:
    """(predictions in the target's terms, f) for the rows of ``frame``."""
    f = network.forward(prep.transform(frame))
    for column, values in prep.unseen.items():
        shown = ", ".join(map(repr, values[:5])) + (", …" if len(values) > 5 else "")
        common.warn(
            f"note: column {column!r} has values unseen in training ({shown}); "
            "they get no one-hot input"
        )
    if prep.task == "classification":
        if network.output.name != "softmax":
            raise ModelFileError("multi-label models cannot be used from the command line yet")
        return prep.decode(f.argmax(axis=1)), f
    return prep.decode(f[:, 0]), f


@click.command()
@click.argument("model")
@click.argument("data")
@click.option("--out", help="write the predictions here (.csv, .tsv or .parquet; default: stdout)")
@click.option("--proba", is_flag=True, help="also the probability of every class")
def predict(model: str, data: str, out: str | None, proba: bool) -> None:
    """Predict for the rows of DATA with MODEL (class names for classifiers); columns the
    model does not use, such as the target, are ignored."""
    import pandas as pd

    path = common.check_output(out, "--out", (".csv", ".tsv", ".parquet"))
    common.check_distinct({"DATA file": data, "MODEL file": model}, {"--out": path})
    frame, _ = common.open_data(data)
    network, prep, _ = open_model(model, frame)
    predicted, f = _outputs(network, prep, frame)
    table = pd.DataFrame({"prediction": predicted})
    if proba:
        if prep.task != "classification":
            raise DataError("--proba needs a classifier; this model is a regressor")
        for k, name in enumerate(prep.classes):
            table[f"p({name})"] = f[:, k]
    if path is None:
        table.to_csv(sys.stdout, index=False)
        return
    if path.suffix.lower() == ".parquet":
        blob = table.to_parquet(index=False)
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        blob = table.to_csv(index=False, sep=sep).encode()
    write_atomically(path, blob)  # a failure or Ctrl-C leaves the old file whole
    common.note(f"wrote {len(table)} predictions to {path}")


@click.command()
@click.argument("model")
@click.argument("data")
@click.option("--target", help="target column (default: the one the model was trained on)")
def evaluate(model: str, data: str, target: str | None) -> None:
    """Accuracy, per-class precision/recall and the confusion matrix (classifiers), or MSE,
    MAE and R² (regressors), of MODEL on DATA."""
    frame, _ = common.open_data(data)
    network, prep, _ = open_model(model, frame)
    predicted, f = _outputs(network, prep, frame)
    prep.target = pick_column(frame, target or prep.target or None)
    truth = prep.encode_target(frame)
    console = common.console()
    console.print(f"{len(frame)} rows of {data}, target {prep.target!r}")
    if prep.task == "classification":
        metrics = report.classification_metrics(truth, f.argmax(axis=1), prep.classes)
        report.classification_tables(metrics, prep.classes, console)
    else:
        metrics = report.regression_metrics(prep.decode(truth), predicted)
        report.metrics_table({data: metrics}, console, title="regression metrics")


@click.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="print the whole metadata as JSON")
def info(model: str, as_json: bool) -> None:
    """The architecture, preprocessing and training summary stored in MODEL (a model file
    or a checkpoint written by ``deltaprop train --checkpoint``)."""
    try:
        network, metadata = load_with_metadata(model)
    except CheckpointGiven:
        _checkpoint_summary(model)
        return
    if as_json:
        click.echo(json.dumps(metadata, indent=2))
        return
    network = network if isinstance(network, Network) else network.network_
    console = common.console()
    console.print(f"[bold]{model}[/bold] ({metadata.get('kind')})")
    hidden = ", ".join(a.name for a in network.activations) or "none"
    console.print(
        f"network: {'-'.join(map(str, network.sizes))}, hidden σ: {hidden}, output: "
        f"{network.output.name}, {network.dtype.name}, {network.params.size} parameters"
    )
    try:
        _summary(metadata, console)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ModelFileError(
            f"{model}: the file's metadata is mangled ({type(err).__name__}: {err}); "
            f"deltaprop info --json {model} shows it as stored"
        ) from None


def _checkpoint_summary(path: str) -> None:
    from ..checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    run, epochs = checkpoint.settings.get("run"), checkpoint.settings.get("epochs")
    if not isinstance(run, dict) or not isinstance(epochs, int):
        click.echo(
            f"{path}: training checkpoint at epoch {checkpoint.epoch}; network "
            f"{checkpoint.architecture['sizes']}; written from Python (deltaprop.checkpoint), "
            "not by deltaprop train: resume it with load_checkpoint"
        )
        return
    if checkpoint.epoch < epochs:
        then = f"continue with deltaprop train --resume {path}"
    else:
        then = (
            f"the run is complete; to train further: deltaprop train --resume {path} "
            f"--epochs M with M > {checkpoint.epoch}"
        )
    click.echo(
        f"{path}: training checkpoint at epoch {checkpoint.epoch} of {epochs}; network "
        f"{checkpoint.architecture['sizes']}, {run.get('solver')} on {run.get('data')}; {then}"
    )


def _summary(metadata: dict, console) -> None:
    """The inputs, classes and training summary stored in a model file's metadata."""
    prep = metadata.get("preprocessing") or {}
    if prep:
        console.print(
            f"inputs: {', '.join(map(str, prep.get('features', [])))} → target "
            f"{prep.get('target')!r}"
        )
        console.print(f"preprocessing: {_preprocessing(prep)}")
        if prep.get("classes"):
            console.print(f"classes: {', '.join(map(str, prep['classes']))}")
    if metadata.get("feature_names_in"):
        console.print(f"inputs: {', '.join(map(str, metadata['feature_names_in']))}")
    _training_summary(metadata, console)


def _preprocessing(prep: dict) -> str:
    """What ``Preprocessing`` does to the inputs and the target, in a line."""
    categories = prep.get("categories") or {}
    numeric = [c for c in prep.get("features", []) if c not in categories]
    parts = [f"{len(numeric)} numeric column(s) standardised (training rows' mean and scale)"]
    parts += [
        f"{column} one-hot over {len(values)} values" for column, values in categories.items()
    ]
    if prep.get("impute"):
        parts.append(f"missing values filled with the training rows' {prep['impute']}")
    if prep.get("task") == "regression":
        mean, scale = prep.get("target_mean", 0.0), prep.get("target_scale", 1.0)
        parts.append(f"target standardised (mean {mean:.4g}, scale {scale:.4g})")
    return "; ".join(parts)


def _training_summary(metadata: dict, console) -> None:
    """What ``deltaprop train`` stored, or an estimator's parameters and final loss."""
    training = metadata.get("training")
    if not isinstance(training, dict):
        return
    if training.get("command") == "deltaprop train":
        s = training.get("settings", {})
        ending = training.get("stop_reason") or "completed"
        rate = f"η = {s['learning_rate']}, " if s.get("learning_rate") is not None else ""
        console.print(
            f"trained on {s.get('data')} with {s.get('solver')} ({rate}λ = {s.get('l2')}) for "
            f"{training.get('epochs_run')} epochs "
            f"({training.get('seconds', 0):.1f} s); {ending}"
        )
        if isinstance(training.get("metrics"), dict):
            report.metrics_table(training["metrics"], console)
    elif isinstance(metadata.get("params"), dict):
        params = ", ".join(f"{k}={v!r}" for k, v in metadata["params"].items())
        console.print(f"estimator parameters: {params}")
        console.print(f"iterations: {training.get('n_iter')}, final loss: {training.get('loss')}")
