"""What every command of the command line shares: exit statuses, the user's error, arguments."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gdbench.study.defaults import DEFAULT_HOME

#: Exit status of a command that could not start: a bad spec, study or argument.
USAGE_ERROR = 2

#: Exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT).
INTERRUPTED = 130


class CommandError(Exception):
    """A problem the user can fix, reported as one line on stderr."""


def add_home_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, metavar="DIR",
                        help=f"{what} (default: {DEFAULT_HOME}); relative paths of the spec "
                             "and of this command resolve against it")


def check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise CommandError(f"{name}: expected an integer >= 1, got {value}")


def shell_path(path: Path) -> str:
    text = str(path)
    return text if all(c.isalnum() or c in "/._-~" for c in text) else repr(text)


def command_name() -> str:
    """How to call gdbench again: ``gdbench`` where it is on PATH, else the path it was run by."""
    program = Path(sys.argv[0])
    if program.name == "gdbench" and shutil.which("gdbench") is None:
        return shell_path(program)
    return "gdbench"
