"""Metrics (scikit-learn's) and the rich tables that show them."""

from __future__ import annotations

import math

import numpy as np


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MSE, MAE and R² in the target's own units."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "MSE": float(mean_squared_error(y, predicted)),
        "MAE": float(mean_absolute_error(y, predicted)),
        "R²": float(r2_score(y, predicted)) if len(y) > 1 else math.nan,
    }


def classification_metrics(y: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix
    (rows: true class, columns: predicted class)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(np.mean(y == predicted)),
        "per_class": {
            name: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, name in enumerate(classes)
        },
        "confusion": confusion_matrix(y, predicted, labels=labels).tolist(),
    }


def _cell(name: str, value) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "–"
    return f"{value:.2%}" if name in ("accuracy", "precision", "recall", "f1") else f"{value:.4g}"


def metrics_table(metrics: dict[str, dict[str, float]], console, title: str = "final metrics"):
    """Rows: the metrics; columns: the parts (training, validation, ...)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("")
    for part in metrics:
        table.add_column(part, justify="right")
    names = list(dict.fromkeys(name for row in metrics.values() for name in row))
    for name in names:
        cells = [_cell(name, row[name]) if name in row else "" for row in metrics.values()]
        table.add_row(name, *cells)
    console.print(table)


def classification_tables(report: dict, classes: list[str], console) -> None:
    """Accuracy, the per-class table and the confusion matrix."""
    from rich.table import Table

    console.print(f"accuracy: {report['accuracy']:.2%}")
    per_class = Table(title="per class", title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name, row in report["per_class"].items():
        per_class.add_row(name, *(_cell(k, v) for k, v in row.items()))
    console.print(per_class)
    confusion = Table(
        title="confusion matrix (rows: true, columns: predicted)", title_justify="left"
    )
    confusion.add_column("")
    for name in classes:
        confusion.add_column(name, justify="right")
    for name, counts in zip(classes, report["confusion"]):
        confusion.add_row(name, *map(str, counts))
    console.print(confusion)
