"""A store in trouble named in one line; the MLflow writer's wait bounded."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from gdbench.cli._troubles import store_trouble
from gdbench.tracking._writer import Writer


def chained(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except Exception as error:  # noqa: BLE001 - returned with its chain
        return error


def test_a_full_disk_under_sqlite_names_the_database(tmp_path: Path) -> None:
    arguments = argparse.Namespace(home=tmp_path, storage=None)
    error = chained(RuntimeError("wrapped"), sqlite3.OperationalError("database or disk is full"))
    assert store_trouble(error, arguments) == (
        f"{tmp_path / 'optuna.db'}: the disk holding it is full; free some space and rerun the "
        "same command (the trials it left running run again) (database or disk is full)")


def test_a_file_write_names_its_file_and_an_unrelated_error_is_left_alone(
        tmp_path: Path) -> None:
    arguments = argparse.Namespace(home=tmp_path)
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.json"))
    assert store_trouble(full, arguments).startswith(f"{tmp_path / 'x.json'}: the disk holding")
    assert store_trouble(ValueError("bad value"), arguments) is None


def test_the_writer_waits_no_longer_than_its_bound() -> None:
    writer = Writer("test-writer")
    release = threading.Event()
    writer.submit(release.wait)
    started = time.monotonic()
    assert writer.wait(0.5) is False
    assert 0.5 <= time.monotonic() - started < 5
    release.set()
    assert writer.wait(5) is True
    assert writer.unfinished == 0


def test_an_interrupt_ends_the_writers_wait() -> None:
    # Ctrl-C as the command line gets it (a test runner's worker may ignore SIGINT).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        writer = Writer("test-writer")
        never = threading.Event()
        writer.submit(never.wait)  # never ends: a write retrying for good
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            # Bounded here so that a wait which ignores the interrupt fails instead of hanging.
            writer.wait(60)
        assert time.monotonic() - started < 5
        never.set()
    finally:
        signal.signal(signal.SIGINT, previous)
