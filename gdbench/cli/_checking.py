"""``gdbench check-optimizer`` and ``gdbench check-task``: gdbench's generic checks, on an
optimizer or a task of yours."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gdbench.cli._common import CommandError

#: Exit status of a check that failed (a warning passes).
CHECK_FAILED = 1


def add_command(commands: Any) -> None:
    checking = commands.add_parser(
        "check-optimizer", help="run gdbench's optimizer checks on an optimizer of yours",
        description="Run gdbench's generic optimizer checks (config and .keras round trip, XLA, "
                    "float64, sparse gradients, a toy problem, a rule's population, a NumPy "
                    "reference step) on an optimizer: an import path (keras.optimizers.Lion, "
                    "my_optimizers.py:SignSGD, package.module:Class), a plugin's name, or a "
                    "spec, whose optimizers gdbench does not ship are each checked. Exits 1 when "
                    "a check fails.")
    checking.add_argument("optimizer", metavar="SPEC_OR_PATH",
                          help="a spec (.toml) or an optimizer's import path or name")
    checking.add_argument("--reference", metavar="PATH",
                          help="a NumPy reference step, file.py:function or module:function, "
                               "in the rule's form: (param, grad, slots, *, step, "
                               "learning_rate, **hyperparameters) -> (new_param, new_slots)")
    checking.set_defaults(handler=_check)
    tasks = commands.add_parser(
        "check-task", help="check a task of yours: build, a short fit, its seed, its objectives",
        description="Build a task of yours (an import path such as himmelblau.py:Himmelblau, a "
                    "plugin's name, or a spec, whose task is checked with its options), run a "
                    "short fit, show that the same seed gives the same curves and another seed "
                    "other ones (or that the seed moves nothing), that its metrics can serve "
                    "as objectives, and whether it trains in populations. Exits 1 when a check "
                    "fails.")
    tasks.add_argument("task", metavar="SPEC_OR_PATH", help="a spec (.toml) or a task's import "
                                                            "path or name")
    tasks.set_defaults(handler=_check_task)


def _check(arguments: argparse.Namespace) -> int:
    from gdbench.study import load_specs

    # A spec is read first: a malformed one is refused before TensorFlow is imported.
    specs = load_specs(arguments.optimizer) if arguments.optimizer.endswith(".toml") else None
    import gdbench.optimizers
    from gdbench.tasks.optimizer_checks import FAIL, check_optimizer, format_results

    reference = None
    if arguments.reference is not None:
        reference = _reference(arguments.reference)
    if specs is not None:
        targets = list(dict.fromkeys(
            (o.label, o.name) for spec in specs
            for o in spec.optimizers if not gdbench.optimizers.source(o.name).built_in))
        if not targets:
            raise CommandError(f"optimizer: {arguments.optimizer} names only gdbench's own "
                               "optimizers, which gdbench's tests check")
    else:
        try:
            found = gdbench.optimizers.source(arguments.optimizer)
        except (KeyError, ValueError, TypeError) as error:
            raise CommandError(f"optimizer: {error.args[0]}") from None
        targets = [(found.name, found.identifier)]
    failed = False
    for label, identifier in targets:
        results = check_optimizer(identifier, reference=reference)
        print(f"{label} ({identifier})")
        print(format_results(results))
        failed = failed or any(result.status == FAIL for result in results)
    return CHECK_FAILED if failed else 0


def _check_task(arguments: argparse.Namespace) -> int:
    from gdbench.study import load_specs

    # A spec is read first: a malformed one is refused before TensorFlow is imported.
    specs = load_specs(arguments.task) if arguments.task.endswith(".toml") else None
    import gdbench.tasks
    from gdbench.tasks.task_checks import FAIL, check_task, format_results

    if specs is not None:
        targets = list(dict.fromkeys(
            (spec.task.name, tuple((k, v) for k, v in spec.task.options.items() if k != "seed"))
            for spec in specs))
    else:
        targets = [(arguments.task, ())]
    failed = False
    for identifier, options in targets:
        try:
            found = gdbench.tasks.source(identifier)
        except (KeyError, ValueError, TypeError) as error:
            raise CommandError(f"task: {error.args[0]}") from None
        print(f"{found.name} ({found.origin})")
        results = check_task(found.identifier, options=dict(options))
        print(format_results(results))
        failed = failed or any(result.status == FAIL for result in results)
    return CHECK_FAILED if failed else 0


def _reference(path: str) -> Any:
    """The function ``path`` names (``file.py:function``, ``module:function``)."""
    import importlib
    import importlib.util

    if ":" not in path:
        raise CommandError(f"--reference: expected file.py:function or module:function, "
                           f"got {path!r}")
    where, name = path.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(where).stem, Path(where).resolve())
            if spec is None or spec.loader is None or not Path(where).is_file():
                raise CommandError(f"--reference: no such file: {where}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except CommandError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of the user's module is reported
        raise CommandError(f"--reference: importing {where} raised {type(error).__name__}: "
                           f"{error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise CommandError(f"--reference: {where} has no function {name!r}")
    return function
