"""An optimizer a spec brings (a Keras class, a rule, a plugin's): the space searched unless
the spec says otherwise, the keywords kept at their defaults, and the lines ``gdbench
run`` prints about them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import gdbench.optimizers
from gdbench.study.plan.first_look import (
    OPTIMIZER_FORMS,
    Names,
    entry_name,
    unknown_entry,
)
from gdbench.study.spec import spaces
from gdbench.study.spec.domains import Domain
from gdbench.study.spec.fields import FieldReader
from gdbench.study.spec.model import StudySpec

__all__ = ["default_optimizer_space", "found_entry", "kept_keywords", "optimizer_names",
           "optimizer_notes", "read_source", "refused_value", "searchable_defaults",
           "shared_keywords"]


def default_optimizer_space(source: gdbench.optimizers.OptimizerSource) -> Mapping[str, Domain]:
    """What a spec searches for ``source`` unless it says otherwise: gdbench's own space for
    one of gdbench's optimizers, else the space its signature's defaults give
    (:func:`~gdbench.study.spec.spaces.signature_space`)."""
    if source.built_in:
        return spaces.OPTIMIZER_SPACES.get(source.name, {})
    return spaces.signature_space(searchable_defaults(source))[0]


def kept_keywords(source: gdbench.optimizers.OptimizerSource) -> list[str]:
    """The keywords of ``source`` its default space leaves at their defaults."""
    if source.built_in:
        space = spaces.OPTIMIZER_SPACES.get(source.name, {})
        return [k for k in source.hyperparameters() if k not in space]
    return spaces.signature_space(searchable_defaults(source))[1]


def optimizer_notes(spec: StudySpec) -> list[str]:
    """One line for each optimizer of ``spec`` that gdbench does not ship: the keywords it
    searches and those it keeps; and one for each that trains one trial at a time
    where the study trains populations."""
    lines = []
    for optimizer in spec.optimizers:
        source = gdbench.optimizers.source(optimizer.name)
        if source.built_in:
            continue
        searched = [k for k, domain in optimizer.space.items() if domain.searched]
        fixed = [f"{k} = {domain.nominal()!r}" for k, domain in optimizer.space.items()
                 if not domain.searched]
        defaults = searchable_defaults(source)
        default_space = default_optimizer_space(source)
        kept = [f"{k} = {defaults[k]!r}" + (
                    f" (it refuses {k} = {refused_value(source, k, default_space[k])!r} of the "
                    "default space)" if k in default_space else "")
                for k in defaults if k not in optimizer.space]
        parts = [f"searches {', '.join(searched) or 'nothing'}"]
        if fixed:
            parts.append(f"fixes {', '.join(fixed)}")
        if kept:
            parts.append(f"keeps at its defaults {', '.join(kept)}")
        lines.append(f"optimizer {optimizer.label} ({source.origin}): {'; '.join(parts)}")
        if spec.population and not source.vectorizable:
            lines.append(f"optimizer {optimizer.label} is a Keras class, not an update rule: "
                         "its trials train one at a time, not in populations")
    return lines


def refused_value(source: gdbench.optimizers.OptimizerSource, keyword: str, domain: Domain) -> Any:
    """The first value of ``domain`` that ``source``'s constructor refuses for ``keyword``;
    ``None`` when it takes them all."""
    for candidate, _ in domain.candidates():
        try:
            source.build(**{keyword: candidate})
        except Exception:  # noqa: BLE001 - a user's constructor may raise anything
            return candidate
    return None


def searchable_defaults(source: gdbench.optimizers.OptimizerSource) -> dict[str, Any]:
    """η, the hyperparameters and ``weight_decay`` (when listed) at their defaults."""
    defaults = source.defaults()
    found = source.hyperparameters()
    if "weight_decay" in defaults and source.refusal("weight_decay") is None:
        found["weight_decay"] = defaults["weight_decay"]
    return found


def shared_keywords(source: gdbench.optimizers.OptimizerSource) -> list[str]:
    """The keywords ``[search]`` sets for ``source``: every one it takes, but ``weight_decay``
    only where it is its own (``adamw``, a class that lists it), not Keras's base keyword
    that would make the others refuse it."""
    own = inspect.signature(source.optimizer_class.__init__).parameters
    return [k for k in source.keywords()
            if k != "weight_decay" or (k in own and source.refusal(k) is None)]


def optimizer_names() -> Names:
    """What a spec may name as an optimizer: gdbench's, the plugins', an import path."""
    return Names("optimizer", gdbench.optimizers.names(),
                 sorted(gdbench.optimizers.plugin_names()), OPTIMIZER_FORMS)


def read_source(reader: FieldReader, value: Any, field: str
                ) -> tuple[gdbench.optimizers.OptimizerSource, dict[str, Any], str]:
    """An entry's optimizer, found by name or import path (:func:`gdbench.optimizers.source`;
    a file's path is relative to the spec's folder), its other keys, and its name's field;
    ``reader`` (the spec's) names the field of a bad entry.

    A rule of the user's is traced once as the population engines run it, so that a
    rule they cannot run is refused here, not in the middle of a study.
    """
    source, own, name_field = found_entry(
        reader, value, field, names=optimizer_names(), find=gdbench.optimizers.source)
    try:
        source.build()
    except Exception as error:  # noqa: BLE001 - a user's constructor may raise anything
        raise reader.error(name_field, f"{source.name}: building it raised "
                                     f"{type(error).__name__}: {error}") from None
    if source.vectorizable and not source.built_in:
        from gdbench.tasks.population import (
            check_rule,  # keeps TensorFlow out of start-up
        )

        try:
            check_rule(source.optimizer_class)
        except ValueError as error:
            raise reader.error(name_field, str(error)) from None
    return source, own, name_field


def found_entry(reader: FieldReader, value: Any, field: str, *, names: Names,
                find: Callable[..., Any]) -> tuple[Any, dict[str, Any], str]:
    """What a spec's entry names (``find(identifier, base=the spec's folder)``), the entry's
    other keys and its name's field; an entry that names nothing ``find`` knows is refused
    with the closest registered name and every accepted one
    (:func:`~gdbench.study.plan.first_look.unknown_entry`, the first look's own line).

    Args:
        reader: the spec's reader (names the file).
        value: the entry: a name, or a table ``{name = "...", ...}``.
        field: the entry's field.
        names: what may be named (gdbench's names, the plugins', the import paths' forms).
        find: ``gdbench.optimizers.source`` or ``gdbench.tasks.source``.
    """
    identifier, own, name_field = entry_name(reader, value, field, names)
    try:
        return find(identifier, base=reader.path.parent), own, name_field
    except KeyError:
        raise unknown_entry(reader, name_field, identifier, names) from None
    except (ValueError, TypeError) as error:
        raise reader.error(name_field, str(error)) from None


