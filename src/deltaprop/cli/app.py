"""The command group and the one place where errors become messages and exit statuses.

Every user error (a bad option, unreadable data, a damaged model file) ends as one line
``error: <problem>; <fix>`` on standard error with exit status 2 and no traceback; a
diverged run exits with 1; Ctrl-C with 130.
"""

from __future__ import annotations

import sys
import warnings

import click

from ..errors import DeltapropError, DivergenceError
from . import explain, inspect, model, playground, train

USAGE_ERROR, FAILURE, INTERRUPTED = 2, 1, 130
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click ≥ 8.2


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _note_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"note: {message}", err=True)


def error(message: str) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)


class DeltapropGroup(click.Group):
    """A click group whose ``main`` turns the project's errors into one-line messages."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            with warnings.catch_warnings():  # a library warning is a note here, not source
                warnings.showwarning = _note_warning
                result = super().main(args, "deltaprop", complete_var, False, **extra)
            code = result if isinstance(result, int) else 0
        except NO_ARGS_IS_HELP as err:  # a bare `deltaprop` (or group): the help, unflattened
            click.echo(err.format_message())
            code = 0
        except click.UsageError as err:
            hint = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
            error(f"{err.format_message()}{hint}")
            code = USAGE_ERROR
        except click.ClickException as err:
            error(err.format_message())
            code = err.exit_code
        except DivergenceError as err:
            error(str(err))
            code = FAILURE
        except DeltapropError as err:
            error(str(err))
            code = USAGE_ERROR
        except (click.Abort, KeyboardInterrupt):
            error("interrupted (Ctrl-C)")
            code = INTERRUPTED
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=DeltapropGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deltaprop", prog_name="deltaprop")
def cli() -> None:
    """Feedforward networks trained by explicit backpropagation and batch gradient descent.

    Start with `deltaprop train` (the 3-arm spiral, full-batch gradient descent).
    """


COMMANDS = [
    train.train,
    model.predict,
    model.evaluate,
    model.info,
    explain.explain,
    inspect.gradcheck,
    inspect.datasets,
    inspect.plot,
    playground.playground,
]
for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    return cli.main(argv, prog_name="deltaprop", standalone_mode=False)
