"""Where a thing a user brings comes from: an import path, a file beside a spec, a plugin.

The optimizers' and the tasks' registries (:mod:`gdbench.optimizers.registry`,
:mod:`gdbench.tasks.registry`) find what they are not built with the same way:

| identifier                 | what it finds                                        |
|----------------------------|------------------------------------------------------|
| ``package.module.Name``    | an attribute of a module, by its dotted import path  |
| ``package.module:Name``    | an attribute of an importable module                 |
| ``my_file.py:Name``        | an attribute of a Python file (relative to ``base``)  |
| ``name``                   | a plugin: an entry point of the registry's group     |

A plugin is a distribution that declares an entry point in a group (``[project.entry-points.
"gdbench.optimizers"]``, ``"gdbench.tasks"``). A name that two sources claim (gdbench and a
plugin, or two plugins) is refused, naming both. Nothing here imports Keras: the command
line lists plugins through this module without starting TensorFlow.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__ = ["BUILT_IN", "claimant", "is_path", "load_entry", "locate", "owner", "plugin_claims",
           "sole_claim"]

#: Where gdbench's own optimizers and tasks come from, as a claim on a name says it.
BUILT_IN = "gdbench (built in)"


def is_path(identifier: str) -> bool:
    """Whether ``identifier`` names an object by path (``module.Name``, ``module:Name``,
    ``file.py:Name``) rather than by a registered or plugin name."""
    return ":" in identifier or "." in identifier


# -- plugins -------------------------------------------------------------------


def plugin_claims(group: str) -> dict[str, tuple[importlib.metadata.EntryPoint, ...]]:
    """Each name the installed distributions claim in entry-point ``group`` (lower case) →
    the distinct entry points claiming it."""
    return _plugin_table(group, tuple(sys.path))


@functools.cache
def _plugin_table(group: str, search_path: tuple[str, ...]
                  ) -> dict[str, tuple[importlib.metadata.EntryPoint, ...]]:
    del search_path  # the cache key: a folder added to sys.path may hold new distributions
    claims: dict[str, dict[str, importlib.metadata.EntryPoint]] = {}
    for entry in importlib.metadata.entry_points(group=group):
        claims.setdefault(entry.name.lower(), {})[entry.value] = entry
    return {name: tuple(found.values()) for name, found in claims.items()}


def owner(entry: importlib.metadata.EntryPoint) -> str:
    """The distribution an entry point comes from, with its version."""
    dist = entry.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unnamed distribution"


def claimant(entry: importlib.metadata.EntryPoint) -> str:
    """An entry point's claim, in words: ``plugin gdbench-signum 0.1 (signum_pkg:Signum)``."""
    return f"plugin {owner(entry)} ({entry.value})"


def sole_claim(name: str, group: str, built_in: bool, what: str
               ) -> importlib.metadata.EntryPoint | None:
    """The plugin entry point that claims ``name`` in ``group``; ``None`` when none does.

    Args:
        name: a name in lower case.
        group: the entry-point group.
        built_in: whether gdbench claims the name itself.
        what: ``"optimizer"``, ``"task"``: for the message.

    Raises:
        ValueError: two sources claim the name; the message names both.
    """
    entries = plugin_claims(group).get(name, ())
    claims = ([BUILT_IN] if built_in else []) + [claimant(entry) for entry in entries]
    if len(claims) > 1:
        raise ValueError(f"{what} {name!r} is claimed by {' and by '.join(claims)}; "
                         "uninstall one, or name it by its import path")
    return entries[0] if entries else None


def load_entry(entry: importlib.metadata.EntryPoint) -> Any:
    """What an entry point names, imported.

    Raises:
        ValueError: importing it raised; the message names the plugin and the error.
    """
    try:
        return entry.load()
    except Exception as error:  # noqa: BLE001 - any failure of a plugin's import is reported
        raise ValueError(f"{claimant(entry)}: loading it raised {type(error).__name__}: {error}"
                         ) from None


# -- paths ---------------------------------------------------------------------


def locate(identifier: str, base: Path) -> tuple[str, str, Any]:
    """The object a path names: (the identifier, a file's path made absolute; the attribute's
    last name; the object).

    Args:
        identifier: ``module.Name``, ``module:Name`` or ``file.py:Name``.
        base: the folder a relative file path starts from.

    Raises:
        ValueError: a malformed path, a missing file or module, an import that raises, or
            a module without the attribute; the message says which.
    """
    if ":" in identifier:
        where, attribute = identifier.rsplit(":", 1)
    else:
        where, attribute = identifier.rsplit(".", 1)
    if not where or not attribute:
        raise ValueError(f"{identifier!r}: expected module.Name, module:Name or file.py:Name")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = (base / where).resolve()
        module = _file_module(path)
        identifier = f"{path}:{attribute}"
    else:
        module = _import(where)
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{identifier!r}: {where} has no {attribute!r}")
        found = getattr(found, part)
    return identifier, attribute.rsplit(".", 1)[-1], found


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise ValueError(f"no module named {module_name!r} (is it installed, or is it a "
                             "file? write file.py:Name)") from None
        raise ValueError(f"{module_name}: importing it raised ModuleNotFoundError: {error}"
                         ) from None
    except Exception as error:  # noqa: BLE001 - any failure of a user's module is reported
        raise ValueError(f"{module_name}: importing it raised {type(error).__name__}: {error}"
                         ) from None


def _file_module(path: Path) -> Any:
    """The module of a Python file, imported once per process."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"gdbench_user_file_{digest}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - any failure of a user's file is reported
        del sys.modules[module_name]
        raise ValueError(f"{path.name}: importing it raised {type(error).__name__}: {error}"
                         ) from None
    return module
