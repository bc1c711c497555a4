"""``gdbench list``: every optimizer, schedule and task, with keywords, defaults and search spaces."""

from __future__ import annotations

import argparse
import inspect
from typing import Any


def add_command(commands: Any) -> None:
    listing = commands.add_parser("list", help="list optimizers, schedules and tasks",
                                  description="List every optimizer (keywords, defaults and "
                                              "default search space), schedule and task.")
    listing.set_defaults(handler=_list)


def _defaults_text(parameters: dict[str, Any]) -> str:
    return ", ".join(name if default is _REQUIRED else f"{name}={default!r}"
                     for name, default in parameters.items())


_REQUIRED = object()


def _signature(callable_: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
    return {
        p.name: (_REQUIRED if p.default is p.empty else p.default)
        for p in inspect.signature(callable_).parameters.values()
        if p.kind.name in kinds and p.name not in ("self", "name")
    }


def _list(arguments: argparse.Namespace) -> int:
    del arguments
    import gdbench.optimizers
    import gdbench.schedules
    import gdbench.tasks
    from gdbench.study import spaces

    print("Optimizers (keywords and defaults; default search space):")
    for name, optimizer_class in gdbench.optimizers.REGISTRY.items():
        keywords = _signature(optimizer_class.__init__, ("POSITIONAL_OR_KEYWORD",))
        print(f"  {name:<10} {_defaults_text(keywords)}")
        space = spaces.OPTIMIZER_SPACES.get(name, {})
        if space:
            print(f"  {'':<10} search: " + "; ".join(d.describe(k) for k, d in space.items()))
    print("\nSchedules (keywords; η is the optimizer's learning_rate; default search space):")
    for name, schedule_class in gdbench.schedules.REGISTRY.items():
        keywords = _signature(schedule_class.__init__, ("POSITIONAL_OR_KEYWORD",))
        print(f"  {name:<18} {_defaults_text(keywords)}")
        space = spaces.SCHEDULE_SPACES[name]
        described = [d.describe(k) for k, d in space.parameters.items()]
        described += [derived.description for derived in space.derived.values()]
        if space.learning_rate_keyword:
            described.insert(0, f"{space.learning_rate_keyword} = η")
        print(f"  {'':<18} " + "; ".join(described))
    print("\nTasks (options; default epochs, batch size and objective):")
    for name, task_class in gdbench.tasks.REGISTRY.items():
        kind = "toy" if issubclass(task_class, gdbench.tasks.ToyTask) else "image"
        batch = task_class.default_batch_size or "full"
        print(f"  {name:<20} {kind:<5} epochs={task_class.default_epochs} batch_size={batch} "
              f"objective={task_class.objective_metric}")
        print(f"  {'':<20} {_defaults_text(_signature(task_class.__init__, ('KEYWORD_ONLY',)))}")
    from gdbench.study import samplers

    print(f"\nSamplers: {', '.join(samplers.SAMPLERS)} (default tpe).  "
          f"Pruners: {', '.join(samplers.PRUNERS)} (default median).")
    return 0
