"""``gdbench list``: every optimizer, schedule and task, with keywords, defaults and search spaces.

The command answers at once: it imports neither Keras nor TensorFlow (unless a plugin
brings tasks, whose options are read by loading them). The
registries, the constructors' keywords and defaults and the tasks' class
attributes are read from the packages' source (:class:`~gdbench._package_source.PackageSource`), where
they are written once; the search spaces and the sampler tables are modules
that import no Keras.
"""

from __future__ import annotations

import argparse
import ast
from typing import Any

from gdbench import _sources
from gdbench._package_source import REQUIRED, PackageSource


def add_command(commands: Any) -> None:
    listing = commands.add_parser("list", help="list optimizers, schedules, tasks and samplers",
                                  description="List every optimizer (keywords, defaults and "
                                              "default search space), schedule, task and sampler "
                                              "(with the extra that installs it).")
    listing.set_defaults(handler=_list)


def _defaults_text(parameters: dict[str, Any]) -> str:
    return ", ".join(name if default is REQUIRED else f"{name}={default!r}"
                     for name, default in parameters.items())


def _plugin_claims(package: PackageSource) -> dict[str, list[str]]:
    """Each name the installed plugins claim in the package's entry-point group → its sources
    (gdbench's own first), without loading them."""
    group = ast.literal_eval(package.constant("ENTRY_POINT_GROUP"))
    built_in = package.registry()
    claims = {}
    for name, entries in sorted(_sources.plugin_claims(group).items()):
        sources = [f"{_sources.owner(entry)} ({entry.value})" for entry in entries]
        claims[name] = ([_sources.BUILT_IN] if name in built_in else []) + sources
    return claims


def _claim_line(name: str, sources: list[str], width: int) -> str:
    line = f"  {name:<{width}} {' and '.join(sources)}"
    return line + (" -- refused: two sources claim this name" if len(sources) > 1 else "")


def _list_plugins(optimizers: PackageSource) -> None:
    """The optimizers installed plugins bring, by name, without loading them (Keras stays out);
    a name two sources claim is marked refused, naming both."""
    claims = _plugin_claims(optimizers)
    group = ast.literal_eval(optimizers.constant("ENTRY_POINT_GROUP"))
    print(f"\nPlugin optimizers (entry points {group!r}; their default space comes from "
          "their signature):")
    if not claims:
        print("  none installed")
    for name, sources in claims.items():
        print(_claim_line(name, sources, 10))


def _list_task_plugins(tasks: PackageSource) -> None:
    """The tasks installed plugins bring, with their options: listing those loads them (and
    so Keras), where any is installed; a name two sources claim is marked refused."""
    claims = _plugin_claims(tasks)
    group = ast.literal_eval(tasks.constant("ENTRY_POINT_GROUP"))
    print(f"\nPlugin tasks (entry points {group!r}):")
    if not claims:
        print("  none installed")
        return
    import gdbench.tasks

    for name, sources in claims.items():
        print(_claim_line(name, sources, 20))
        if len(sources) > 1:
            continue
        try:
            task_class = gdbench.tasks.source(name).task_class
        except ValueError as error:
            print(f"  {'':<20} cannot be loaded: {error}")
            continue
        kind = "toy" if issubclass(task_class, gdbench.tasks.ToyTask) else "keras"
        batch = task_class.default_batch_size or "full"
        print(f"  {'':<20} {kind} epochs={task_class.default_epochs} batch_size={batch} "
              f"objective={task_class.objective_metric}; options: "
              f"{', '.join(task_class.option_names())}")


def _list(arguments: argparse.Namespace) -> int:
    del arguments
    from gdbench.study.plan import samplers
    from gdbench.study.spec import spaces

    optimizers = PackageSource("optimizers")
    print("Optimizers (keywords and defaults; default search space):")
    for name, class_name in optimizers.registry().items():
        print(f"  {name:<10} {_defaults_text(optimizers.keywords(class_name))}")
        space = spaces.OPTIMIZER_SPACES.get(name, {})
        if space:
            print(f"  {'':<10} search: " + "; ".join(d.describe(k) for k, d in space.items()))
    _list_plugins(optimizers)
    schedules = PackageSource("schedules")
    print("\nSchedules (keywords; η is the optimizer's learning_rate; default search space):")
    for name, class_name in schedules.registry().items():
        print(f"  {name:<18} {_defaults_text(schedules.keywords(class_name))}")
        schedule_space = spaces.SCHEDULE_SPACES[name]
        described = [d.describe(k) for k, d in schedule_space.parameters.items()]
        described += [derived.description for derived in schedule_space.derived.values()]
        if schedule_space.learning_rate_keyword:
            described.insert(0, f"{schedule_space.learning_rate_keyword} = η")
        print(f"  {'':<18} " + "; ".join(described))
    tasks = PackageSource("tasks")
    print("\nTasks (options; default epochs, batch size and objective):")
    for name, class_name in tasks.registry().items():
        kind = "toy" if tasks.is_subclass(class_name, "ToyTask") else "image"
        batch = tasks.attribute(class_name, "default_batch_size") or "full"
        print(f"  {name:<20} {kind:<5} epochs={tasks.attribute(class_name, 'default_epochs')} "
              f"batch_size={batch} objective={tasks.attribute(class_name, 'objective_metric')}")
        print(f"  {'':<20} {_defaults_text(tasks.keywords(class_name, keyword_only=True))}")
    _list_task_plugins(tasks)
    print("\nSamplers (default tpe):")
    for name in samplers.SAMPLERS:
        missing = samplers.missing_modules(name)
        if not missing:
            print(f"  {name:<10} installed")
        else:
            print(f"  {name:<10} not installed (needs {', '.join(missing)}): "
                  f"pip install gdbench[{samplers.SAMPLER_EXTRAS[name][0]}]")
    print(f"Pruners: {', '.join(samplers.PRUNERS)} (default median).")
    return 0
