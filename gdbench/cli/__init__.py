"""The ``gdbench`` command: run studies, look at them, list what there is.

    gdbench run studies/quickstart.toml          # run (or resume) the spec's studies
    gdbench ui                                   # MLflow, TensorBoard and optuna-dashboard
    gdbench report quickstart_sigmoid            # leaderboard and plots of a stored study
    gdbench confirm quickstart_sigmoid           # its best of each optimizer over 10 seeds
    gdbench list                                 # optimizers, schedules and tasks
    gdbench check-optimizer my_optimizers.py:SignSGD   # gdbench's checks on yours
    gdbench create SPEC --storage URL            # a study shared by workers (many machines)
    gdbench worker SPEC --storage URL            # one more worker on it

This package is a leaf: no library module imports it. A problem the user can
fix (a spec error, an unknown study, a bad argument, an unreachable server)
prints one line to stderr and exits with status 2; Ctrl-C or SIGTERM exits
with status 130 once the interrupted trials are queued again. No error prints
a Python traceback unless ``--debug`` (or ``GDBENCH_DEBUG=1``) asks for it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, Sequence

from gdbench.cli import _checking, _listing, _studies, _ui
from gdbench.cli._common import INTERRUPTED, USAGE_ERROR, CommandError
from gdbench.cli._ui import ui_commands

__all__ = ["INTERRUPTED", "USAGE_ERROR", "CommandError", "build_parser", "entry", "interrupts_raised", "main",
           "ui_commands"]

#: Exit status of a command that failed for a reason the user cannot fix (a bug).
FAILURE = 1

#: Seconds after which an interrupt that landed in a callback is signalled again.
REDELIVERY_DELAY_S = 0.01


def entry() -> None:
    """The ``gdbench`` program: :func:`main`, then an exit without the interpreter's teardown.

    By the time :func:`main` returns, every command has written, flushed and
    closed what it keeps (Optuna's and MLflow's stores, TensorBoard's event
    files, the reports). Taking apart TensorFlow's, Keras's and MLflow's
    modules and objects one by one, as the interpreter does after the exit
    handlers, writes nothing and takes a second or more: the process ends
    once the exit handlers have run.
    """
    # Registered before any library a command imports: it runs after all of theirs.
    atexit.register(_exit_now)
    global _exit_status
    _exit_status = main()
    raise SystemExit(_exit_status)


#: :func:`main`'s status, once it returned (``None`` while it runs, or if it raised).
_exit_status: int | None = None


def _exit_now() -> None:
    if _exit_status is None:
        return
    # The exit handlers registered before this one (the logging module's) are not run.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(_exit_status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gdbench`` command line.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 on success, 2 on a usage or spec error, 130 when
        interrupted, 1 on an unexpected error.
    """
    # Before TensorFlow, matplotlib or Keras is imported by any command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    parser = build_parser()
    arguments = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if arguments.command is None:
        parser.print_help()
        return USAGE_ERROR
    debug = arguments.debug or os.environ.get("GDBENCH_DEBUG", "") not in ("", "0")
    terminal = None if arguments.verbose else _quiet_native_libraries()
    logging.basicConfig(level=logging.WARNING, format="gdbench: %(message)s")
    for noisy in ("alembic", "mlflow", "absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # MLflow logs each failed store write with its traceback; gdbench says it in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    try:
        with interrupts_raised():
            return arguments.handler(arguments)
    except KeyboardInterrupt:
        print("gdbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:
        if debug:
            raise
        from gdbench.study.errors import StudyError

        if isinstance(error, (CommandError, StudyError)):
            print(f"gdbench: error: {error}", file=sys.stderr)
            return USAGE_ERROR
        from gdbench.cli._troubles import store_trouble

        trouble = store_trouble(error, arguments)
        if trouble is not None:
            print(f"gdbench: error: {trouble} (run with --debug for the traceback)",
                  file=sys.stderr)
            return USAGE_ERROR
        print(f"gdbench: error: {type(error).__name__}: {error} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return FAILURE
    finally:
        if terminal is not None:
            _restore_stderr(terminal)


def _quiet_native_libraries() -> int | None:
    """Send what native libraries write to file descriptor 2 (TensorFlow's absl, oneDNN and
    CUDA lines, written before any Python setting can stop them) to /dev/null, while
    Python's own ``sys.stderr`` (errors, warnings, progress) still reaches the terminal.

    Returns:
        The terminal's descriptor, to restore; ``None`` where stderr is not the
        process's own (a test capturing it), which is left as it is.
    """
    if sys.stderr is not sys.__stderr__:
        return None
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (OSError, ValueError):
        return None
    sys.stderr = open(terminal, "w", buffering=1, encoding=sys.__stderr__.encoding or "utf-8",
                      errors="backslashreplace", closefd=False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    return terminal


def _restore_stderr(terminal: int) -> None:
    sys.stderr.flush()
    os.dup2(terminal, 2)
    sys.stderr.close()
    os.close(terminal)
    sys.stderr = sys.__stderr__


@contextlib.contextmanager
def interrupts_raised() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise :class:`~gdbench.study.errors.Interrupted`.

    SIGTERM (a service manager, ``kill``) stops a study as Ctrl-C does; SIGINT is
    set explicitly, since a shell starting gdbench in the background ignores it.
    Python runs a signal's handler between two bytecodes of the main thread, which
    may be inside a garbage-collection or weakref callback (TensorFlow's and
    SQLAlchemy's run often); an exception raised there is ignored, and the
    interrupt would be lost. So an interrupt that Python reports as ignored
    (:data:`sys.unraisablehook`) is signalled again a moment later, from another
    thread, once the callback is over; and again, should that one land in a
    callback too.
    """
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signums}
    previous_hook = sys.unraisablehook

    def deliver_again(unraisable: Any) -> None:
        from gdbench.study.errors import Interrupted

        if isinstance(unraisable.exc_value, Interrupted):
            signum = signal.Signals[unraisable.exc_value.signal_name]
            threading.Timer(REDELIVERY_DELAY_S, os.kill, (os.getpid(), signum)).start()
        else:
            previous_hook(unraisable)

    for signum in signums:
        signal.signal(signum, _interrupt)
    sys.unraisablehook = deliver_again
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: Any) -> None:
    del frame
    from gdbench.study.errors import Interrupted

    raise Interrupted(signal.Signals(signum).name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdbench",
        description="Hyperparameter studies of gradient-descent optimizers: a TOML spec, "
                    "one command, then MLflow, TensorBoard and optuna-dashboard show every trial.",
        epilog="Start with: gdbench run studies/quickstart.toml && gdbench ui",
    )
    parser.add_argument("--debug", action="store_true",
                        help="print the Python traceback of an error (also GDBENCH_DEBUG=1)")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow's and CUDA's own log lines through")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _studies.add_commands(commands)
    _ui.add_command(commands)
    _listing.add_command(commands)
    _checking.add_command(commands)
    return parser
