"""A store in trouble, found in an error's chain, told in one line naming it.

A full disk, a read-only or locked or damaged database reach the command
line as whatever library met them first raised (sqlite3 through SQLAlchemy,
through MLflow or Optuna; an ``OSError`` from a file write): :func:`store_trouble`
finds the cause in the chain and names the file.
"""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

from gdbench.study.defaults import MLFLOW_FILE, OPTUNA_FILE

__all__ = ["store_trouble"]

_FULL = "the disk holding it is full; free some space and rerun the same command " \
        "(the trials it left running run again)"

#: errno → what it means for the file written.
_ERRNOS = {errno.ENOSPC: _FULL, errno.EDQUOT: _FULL,
           errno.EROFS: "it is on a read-only file system", errno.EACCES: "it cannot be written"}

#: SQLite's messages → what they mean for the database.
_SQLITE = {
    "database or disk is full": _FULL,
    "attempt to write a readonly database": "it is read only",
    "database is locked": "it is locked by another program",
    "database disk image is malformed": "it is damaged; restore it from a copy, or move it "
                                        "away to start afresh",
    "file is not a database": "it is not a SQLite database; restore it from a copy, or move it "
                              "away to start afresh",
}


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
    return seen


def _store(arguments: argparse.Namespace, mlflow: bool) -> str:
    home = Path(getattr(arguments, "home", ".")).absolute()
    given = getattr(arguments, "tracking_uri" if mlflow else "storage", None)
    if given:
        return given.removeprefix("sqlite:///")
    return str(home / (MLFLOW_FILE if mlflow else OPTUNA_FILE))


def store_trouble(error: BaseException, arguments: argparse.Namespace) -> str | None:
    """One line naming the file in trouble and why, where ``error`` comes from one; else ``None``."""
    chain = _chain(error)
    for link in chain:
        if isinstance(link, OSError) and link.errno in _ERRNOS and not _is_sqlite(link):
            where = link.filename or f"a file under {Path(getattr(arguments, 'home', '.')).absolute()}"
            return f"{where}: {_ERRNOS[link.errno]} ({link.strerror})"
    mlflow = any(type(link).__module__.startswith("mlflow") for link in chain)
    for link in chain:
        text = str(link)
        for message, meaning in _SQLITE.items():
            if message in text:
                return f"{_store(arguments, mlflow)}: {meaning} ({message})"
    return None


def _is_sqlite(error: OSError) -> bool:
    return type(error).__module__ == "sqlite3"
