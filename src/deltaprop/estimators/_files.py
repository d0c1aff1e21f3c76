"""Model files for the estimators: ``network_`` as tensors, everything else as metadata
(classes with their dtype, feature names, hyper-parameters, training summary)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..errors import ConfigError, ModelFileError
from ..network import Network
from ..training import History

CLASS_KINDS = "biufUO"  # bool, int, uint, float, str, and objects that are str/numbers


def payload(estimator) -> tuple[Network, dict]:
    """(network, metadata) for ``deltaprop.save``."""
    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    params.pop("callbacks")  # code is never stored; a loaded estimator has callbacks=None
    params.pop("backend")  # a cluster connection is not stored either
    sizes = params["hidden_layer_sizes"]
    params["hidden_layer_sizes"] = [int(s) for s in sizes] if hasattr(sizes, "__iter__") else sizes
    if params["dtype"] is not None:
        params["dtype"] = np.dtype(params["dtype"]).name
    if not isinstance(params["random_state"], numbers.Integral):
        params["random_state"] = None  # a RandomState's stream cannot be stored
    metadata = {
        "kind": estimator._model_kind,
        "params": params,
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": _feature_names(estimator),
        "training": {
            "loss": estimator.loss_,
            "best_loss": estimator.best_loss_,
            "loss_curve": estimator.loss_curve_,
            "validation_scores": estimator.validation_scores_,
            "best_validation_score": estimator.best_validation_score_,
            "n_iter": estimator.n_iter_,
            "t": estimator.t_,
            "no_improvement_count": estimator._no_improvement_count,
            "history": estimator.history_.to_dict(),
        },
    }
    if hasattr(estimator, "classes_"):
        metadata["classes"] = _encode_classes(estimator.classes_)
        metadata["multilabel"] = bool(estimator._multilabel)
        metadata["label_dtype"] = estimator._label_dtype.str
    return estimator.network_, metadata


def load(estimator_class, network: Network, metadata: dict):
    """Rebuild a fitted estimator; every disagreement raises ``ModelFileError``."""
    params = dict(metadata["params"])
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    estimator = estimator_class(**params)
    estimator._validate_params()
    _check_architecture(estimator, network, metadata)
    estimator.n_features_in_ = network.n_features
    names = metadata.get("feature_names_in")
    if names is not None:
        if not (isinstance(names, list) and len(names) == network.n_features):
            raise ModelFileError(f"feature_names_in must list {network.n_features} names")
        if not all(isinstance(name, str) for name in names):
            raise ModelFileError("feature_names_in must hold strings")
        estimator.feature_names_in_ = np.array(names, dtype=object)
    if estimator._model_kind == "mlp_classifier":
        estimator.classes_ = _decode_classes(metadata["classes"], network.n_outputs)
        estimator._multilabel = network.output.name == "sigmoid"
        estimator._label_dtype = _label_dtype(metadata["label_dtype"])
    _restore_training(estimator, metadata["training"])
    estimator._set_network(network)
    return estimator


def _feature_names(estimator) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def _check_architecture(estimator, network: Network, metadata: dict) -> None:
    if estimator._model_kind == "mlp_regressor":
        outputs = {estimator._loss_outputs[estimator.loss]}
    else:
        outputs = {"sigmoid"} if metadata.get("multilabel") else {"softmax"}
    if network.output.name not in outputs:
        raise ModelFileError(
            f"a {estimator._model_kind} needs an output of kind {' or '.join(outputs)}, "
            f"the stored network has {network.output.name!r}"
        )
    if not estimator._builds(network):
        raise ModelFileError(
            f"hidden_layer_sizes={estimator.hidden_layer_sizes}, "
            f"activation={estimator.activation!r} disagree with "
            f"the stored network {network}"
        )
    if metadata.get("n_features_in") != network.n_features:
        raise ModelFileError(
            f"n_features_in={metadata.get('n_features_in')!r} disagrees with the network's "
            f"{network.n_features} inputs"
        )


def _encode_classes(classes: np.ndarray) -> dict:
    values = classes.tolist()
    simple = all(isinstance(v, (str, numbers.Number)) for v in values)
    if classes.dtype.kind not in CLASS_KINDS or not simple:
        raise ConfigError(
            f"classes of dtype {classes.dtype} cannot be stored in a model file; "
            "use string, integer, float or bool labels"
        )
    return {"dtype": classes.dtype.str, "values": values}


def _decode_classes(spec: dict, n_outputs: int) -> np.ndarray:
    dtype = _label_dtype(spec["dtype"])
    values = spec["values"]
    if not isinstance(values, list) or not all(isinstance(v, (str, int, float)) for v in values):
        raise ModelFileError("classes must be a list of labels (strings or numbers)")
    if dtype.kind == "O":
        classes = np.empty(len(values), dtype=object)
        classes[:] = values
    else:
        classes = np.array(values, dtype=dtype)
    if classes.tolist() != values:
        raise ModelFileError(f"class labels {values} do not fit the stored dtype {dtype}")
    if len(values) != n_outputs:
        raise ModelFileError(
            f"{len(values)} classes are stored but the network has {n_outputs} outputs"
        )
    if len(set(values)) != len(values):
        raise ModelFileError(f"class labels {values} are not unique")
    return classes


def _label_dtype(name) -> np.dtype:
    if not isinstance(name, str):
        raise ModelFileError(f"label dtype must be a string, got {name!r}")
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise ModelFileError(f"unknown label dtype {name!r}") from None
    if dtype.kind not in CLASS_KINDS or dtype.itemsize > 4096:
        raise ModelFileError(f"label dtype {name!r} is not a label type")
    return dtype


def _restore_training(estimator, summary: dict) -> None:
    curve = [float(v) for v in summary["loss_curve"]]
    scores = summary["validation_scores"]
    estimator.loss_ = float(summary["loss"])
    estimator.loss_curve_ = curve
    estimator.best_loss_ = None if summary["best_loss"] is None else float(summary["best_loss"])
    estimator.validation_scores_ = None if scores is None else [float(v) for v in scores]
    best_score = summary["best_validation_score"]
    estimator.best_validation_score_ = None if best_score is None else float(best_score)
    estimator.n_iter_ = int(summary["n_iter"])
    estimator.t_ = int(summary["t"])
    estimator._no_improvement_count = int(summary["no_improvement_count"])
    history = summary["history"]
    if not isinstance(history, dict) or not isinstance(history.get("records"), list):
        raise ModelFileError("the training history must be an object with a list of records")
    if not all(isinstance(r, dict) for r in history["records"]):
        raise ModelFileError("every training history record must be an object")
    estimator.history_ = History.from_dict(history)
