"""What several commands share: option types, finding the data, output paths, the console."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from .. import datasets
from ..activations import ACTIVATIONS, ALIASES
from ..errors import ConfigError, DataError
from ..tabular import dataset_frame, read_table

ACTIVATION_NAMES = [*ACTIVATIONS, *ALIASES]
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


class Widths(click.ParamType):
    """Hidden-layer widths as ``64,64``; ``0`` (or an empty string) means no hidden layer."""

    name = "WIDTHS"

    def convert(self, value, param, ctx):
        if isinstance(value, list):  # as stored in a checkpoint: checked like the text
            value = ",".join(map(str, value))
        text = str(value).strip()
        if text in ("", "0", "none"):
            return []
        widths = []
        for part in text.split(","):
            try:
                width = int(part)
            except ValueError:
                self.fail(f"{part.strip()!r} is not a whole number; write widths like 64,64")
            if width < 1:
                self.fail(f"every width must be a positive integer, got {width}; e.g. 64,64")
            widths.append(width)
        return widths


class BatchSize(click.ParamType):
    """A positive number of rows, or ``full`` for full-batch gradient descent."""

    name = "N|full"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "full"):
            return None
        try:
            size = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a positive integer nor 'full'")
        if size < 1:
            self.fail(f"must be a positive integer or 'full', got {size}")
        return size


def activation_option(default: str):
    return click.option(
        "--activation",
        type=click.Choice(ACTIVATION_NAMES),
        default=default,
        show_default=True,
        help="hidden-layer σ",
    )


def hidden_option(default: str):
    return click.option(
        "--hidden",
        type=Widths(),
        default=default,
        show_default=True,
        help="hidden-layer widths, comma-separated (0: none)",
    )


def open_data(data: str):
    """(table, name): a built-in dataset by name, or a CSV/TSV/Parquet/.npz file by path.
    Built-in tables carry the dataset's task in ``frame.attrs['task']``."""
    path = Path(data)
    if path.is_file():
        return read_table(path), path.name
    if data in datasets.names():
        dataset = datasets.load(data)
        frame = dataset_frame(dataset)
        frame.attrs["task"] = dataset.task
        return frame, data
    if path.is_dir():  # read_table explains why a folder is no table
        return read_table(path), path.name
    if path.suffix or "/" in data or "\\" in data:
        raise DataError(f"{data}: no such file; check the path")
    close = difflib.get_close_matches(data, datasets.names(), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(
        f"{data!r} is neither a file nor a built-in dataset; {hint}built-in: "
        f"{', '.join(datasets.names())} (`deltaprop datasets` describes them)"
    )


def builtin_task(frame, target: str) -> str | None:
    """A built-in dataset's task when ``target`` is its own target column, else None."""
    return frame.attrs.get("task") if target == frame.columns[-1] else None


def check_output(path: str | None, option: str, formats: tuple[str, ...] = ()) -> Path | None:
    """The output path if it can be written: its folder exists and it is not a folder."""
    if path is None:
        return None
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: the folder {folder} does not exist; create it first")
    if out.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if formats and out.suffix.lower() not in formats:
        raise ConfigError(
            f"{option} {path}: unsupported file type; use one of {', '.join(formats)}"
        )
    return out


def check_distinct(inputs: dict[str, str], outputs: dict[str, Path | None]) -> None:
    """No output overwrites an input file or another output (``option: path`` pairs)."""
    seen: dict[Path, str] = {
        Path(path).resolve(): name for name, path in inputs.items() if Path(path).is_file()
    }
    for option, path in outputs.items():
        if path is None:
            continue
        other = seen.setdefault(path.resolve(), option)
        if other != option:
            raise ConfigError(
                f"{option} {path} is also the {other}; writing it would destroy that file. "
                "Give a different file name"
            )


def console(stderr: bool = False):
    """A rich Console (tables go to standard output, progress and notes to standard error)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def note(message: str, quiet: bool = False) -> None:
    """A status line on standard error (suppressed by --quiet)."""
    if not quiet:
        click.echo(message, err=True)


def warn(message: str) -> None:
    """A message on standard error that --quiet does not suppress."""
    click.echo(message, err=True)
