"""The search-space part of a spec: optimizers, schedules, their domains and ``tune``.

A domain is named in Optuna as the spec names it (see :mod:`gdbench.study.plan.build`),
so that one name in one study holds one kind of Optuna distribution:
:meth:`SpaceReader.check_shared_names` refuses two optimizers (or schedules)
that search one name in kinds Optuna cannot keep together, naming both fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    check_distribution_compatibility,
)

import gdbench.optimizers
import gdbench.schedules
from gdbench.study.spec import domains
from gdbench.study.plan.build import SCHEDULE_PREFIX, TARGET_PREFIX, build_schedule
from gdbench.study.spec import spaces
from gdbench.study.plan.brought import (default_optimizer_space, read_source, refused_value,
                                        shared_keywords)
from gdbench.study.spec.domains import (Choice, Domain, Fixed, IntRange, LogUniform,
                                        OneMinusLogUniform, Steps, StepsRange, Uniform)
from gdbench.study.spec.fields import FieldReader, is_number, join, signature_defaults, type_name
from gdbench.study.spec.model import OptimizerSpec, ScheduleSpec, StudySpec, searched_domains
from gdbench.tracking.limits import MAX_KEY_LENGTH

_RANGE_KEYS = ("low", "high", "log", "step")
# Steps of a nominal run, to check schedule values before the real run is sized.
_NOMINAL_STEPS = 1000
_NOMINAL_LEARNING_RATE = 0.01


class Named(NamedTuple):
    """A domain of a spec, under its Optuna name, with the field it comes from."""

    name: str
    field: str
    domain: Domain


class SpaceReader(FieldReader):
    """Reads the optimizers and schedules of a study with their search spaces."""

    def tune(self, table: dict[str, Any], field: str) -> frozenset[str] | None:
        """``tune``'s keywords, a list of names (checked by :meth:`check_tune` once the
        optimizers, whose default spaces may come from their signatures, are read)."""
        if "tune" not in table:
            return None
        value = table["tune"]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(field, f"expected a list of keyword names, got {value!r}")
        return frozenset(value)

    def check_tune(self, table: dict[str, Any], field: str,
                   optimizers: tuple[OptimizerSpec, ...]) -> None:
        """Every keyword of ``tune`` is in some default space: gdbench's, or one of the
        study's optimizers'."""
        value = table.get("tune", [])
        known = sorted(
            {keyword for space in spaces.OPTIMIZER_SPACES.values() for keyword in space}
            | {key for space in spaces.SCHEDULE_SPACES.values() for key in space.parameters}
            | {keyword for optimizer in optimizers for keyword in
               default_optimizer_space(gdbench.optimizers.source(optimizer.name))})
        for index, item in enumerate(value):
            if item not in known:
                close = difflib.get_close_matches(item, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(join(field, index),
                                 f"{item!r} is in no default space; {hint}"
                                 f"accepted: {', '.join(known)}")

    # -- optimizers ---------------------------------------------------------

    def entries(self, table: Mapping[str, Any], prefix: str, key: str) -> list[tuple[Any, str]]:
        """``key``'s entry (``optimizer = ...``) or each of its list's (``optimizers = [...]``),
        with its field; none when the table has neither."""
        if key in table:
            return [(table[key], join(prefix, key))]
        if key + "s" not in table:
            return []
        listed = table[key + "s"]
        field = join(prefix, key + "s")
        if not isinstance(listed, list) or not listed:
            raise self.error(field, f"expected a non-empty list of {key} names, got {listed!r}")
        return [(item, join(field, index)) for index, item in enumerate(listed)]

    def optimizers(self, table: dict[str, Any], prefix: str, search: dict[str, Any],
                   tune: frozenset[str] | None) -> tuple[tuple[OptimizerSpec, ...], list[Named]]:
        """The optimizers, and every domain of theirs by name (for :meth:`check_shared_names`)."""
        registered = gdbench.optimizers.names()
        if ("optimizer" in table) == ("optimizers" in table):
            raise self.error(join(prefix, "optimizer"),
                             "give exactly one of 'optimizer' (one name) or 'optimizers' "
                             f"(a list to compare); accepted names: {', '.join(registered)}")
        entries = self.entries(table, prefix, "optimizer")
        result: list[OptimizerSpec] = []
        named: list[Named] = []
        for value, field in entries:
            source, own, _ = read_source(self, value, field)
            label = self.label(own, source.name, field)
            if any(spec.label == label for spec in result):
                raise self.error(field, f"{label!r} is listed twice; to compare variants of one "
                                        "optimizer give each a distinct label = \"...\"")
            spec, fields = self.optimizer(source, own, field, search, join(prefix, "search"),
                                          tune)
            result.append(dataclasses.replace(spec, label=label))
            named += [Named(key, fields[key], domain) for key, domain in spec.space.items()]
        return tuple(result), named

    def optimizer(self, source: gdbench.optimizers.OptimizerSource, own: dict[str, Any],
                  field: str, search: dict[str, Any], search_field: str,
                  tune: frozenset[str] | None) -> tuple[OptimizerSpec, dict[str, str]]:
        """``source``'s spec, and the field each keyword of its space comes from."""
        accepted = source.keywords()
        defaults = source.defaults()
        for keyword in own:
            refusal = source.refusal(keyword)
            if refusal is not None:
                raise self.error(join(field, keyword), refusal)
        self.check_keys(own, accepted + ["label"], field)
        default_space = default_optimizer_space(source)
        space: dict[str, Domain] = {
            keyword: domain for keyword, domain in default_space.items()
            if tune is None or keyword in tune
        }
        origins: dict[str, str] = {}
        for source_values, source_field, takes in ((search, search_field, shared_keywords(source)),
                                                   (own, field, accepted)):
            for keyword, value in source_values.items():
                if keyword not in takes:
                    continue
                where = join(source_field, keyword)
                space[keyword] = self.domain(value, where, keyword, default_space.get(keyword),
                                             defaults.get(keyword))
                origins[keyword] = where
        if not source.built_in:
            # A default space read from a signature may reach values the class refuses
            # (Keras's Lion refuses β1 = 0): such a keyword stays at its default.
            space = {keyword: domain for keyword, domain in space.items()
                     if keyword in origins or refused_value(source, keyword, domain) is None}
        fields = {keyword: origins.get(keyword, f"(default space of {source.name}).{keyword}")
                  for keyword in space}
        for keyword, domain in space.items():
            for candidate, candidate_field in _candidates(domain, fields[keyword]):
                try:
                    source.build(**{keyword: candidate})
                except Exception as error:  # noqa: BLE001 - a user's constructor may raise anything
                    raise self.error(candidate_field, f"{source.name}: {error}") from None
        return (OptimizerSpec(name=source.identifier, space=MappingProxyType(space)), fields)

    def check_search_keys(self, search: dict[str, Any], optimizers: tuple[OptimizerSpec, ...],
                          field: str) -> None:
        taken: dict[str, list[str]] = {}
        for spec in optimizers:
            for keyword in shared_keywords(gdbench.optimizers.source(spec.name)):
                taken.setdefault(keyword, []).append(spec.label)
        names = ", ".join(spec.label for spec in optimizers)
        for keyword in search:
            if keyword not in taken:
                close = difflib.get_close_matches(keyword, list(taken), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(join(field, keyword),
                                 f"no optimizer of this study ({names}) takes {keyword!r}; {hint}"
                                 f"accepted: {', '.join(taken)}")

    # -- domains ------------------------------------------------------------

    def domain(self, value: Any, field: str, keyword: str, default: Domain | None,
               reference: Any) -> Domain:
        """A fixed value, ``{low, high, log, step}`` or ``{choices}`` for ``keyword``."""
        if not isinstance(value, dict):
            if not isinstance(value, (bool, int, float, str, list)):
                raise self.error(field, f"expected a value, a range {{low, high}} or "
                                        f"{{choices = [...]}}, got {value!r}")
            return Fixed(value)
        if "choices" in value:
            extra = sorted(set(value) - {"choices"})
            if extra:
                raise self.error(join(field, extra[0]),
                                 "a table with 'choices' takes nothing else")
            choices = value["choices"]
            if not isinstance(choices, list) or not choices:
                raise self.error(join(field, "choices"),
                                 f"expected a non-empty list, got {choices!r}")
            for index, choice in enumerate(choices):
                if not isinstance(choice, (bool, int, float, str)):
                    raise self.error(join(join(field, "choices"), index),
                                     f"expected a number, a string or a boolean, got {choice!r}")
            if len(set(map(repr, choices))) != len(choices):
                raise self.error(join(field, "choices"), f"lists a value twice: {choices!r}")
            return Choice(tuple(choices))
        self.check_keys(value, _RANGE_KEYS + ("choices",), field)
        for bound in ("low", "high"):
            if bound not in value:
                raise self.error(join(field, bound), "required in a range {low, high}")
            if not is_number(value[bound]) or not math.isfinite(value[bound]):
                raise self.error(join(field, bound), "expected a finite number, "
                                 f"got {type_name(value[bound])} {value[bound]!r}")
        low, high = value["low"], value["high"]
        if not low < high:
            raise self.error(join(field, "low"),
                             f"empty or inverted range: low = {low!r} must be < high = {high!r}"
                             " (fix a value by writing it without a range)")
        default_log = isinstance(default, (LogUniform, OneMinusLogUniform, StepsRange)) or (
            default is None and keyword in spaces.DECAY_KEYWORDS)
        log = self.flag(value.get("log", default_log), join(field, "log"))
        step = value.get("step")
        if step is not None and (not is_number(step) or step <= 0):
            raise self.error(join(field, "step"), f"expected a number > 0, got {step!r}")
        if step is not None and log:
            raise self.error(join(field, "step"),
                             "a log-scale range takes no step; set log = false")

        integer = isinstance(default, (IntRange, StepsRange, Steps)) or (
            isinstance(reference, int) and not isinstance(reference, bool))
        if integer:
            for bound in ("low", "high") + (("step",) if step is not None else ()):
                if not isinstance(value[bound], int):
                    raise self.error(join(field, bound), f"{keyword} is a whole number of steps; "
                                                          f"got {value[bound]!r}")
            if log and low < 1:
                raise self.error(join(field, "low"), "a log-scale range needs low >= 1")
            return IntRange(low, high, log=log, step=step or 1)
        if log and keyword in spaces.DECAY_KEYWORDS:
            if not 0 <= low or not high < 1:
                raise self.error(join(field, "high" if high >= 1 else "low"),
                                 f"{keyword} is a decay rate: a range needs 0 <= low < high < 1 "
                                 f"(sampled as 1 - {keyword} on a log scale); got [{low}, {high}]")
            if round(1.0 - high, 12) <= 0:
                raise self.error(join(field, "high"), f"{keyword} = {high!r} lies within 1e-12 "
                                                      "of 1; give a decay rate further from 1")
            # Rounded so that β = 0.9999 gives 1e-4, not 9.99999999999989e-05.
            return OneMinusLogUniform(round(1.0 - high, 12), round(1.0 - low, 12))
        if log:
            if low <= 0:
                raise self.error(join(field, "low"),
                                 f"a log-scale range needs low > 0, got {low!r}; set log = false "
                                 "for a linear range")
            return LogUniform(float(low), float(high))
        return Uniform(float(low), float(high), None if step is None else float(step))

    # -- schedules ----------------------------------------------------------

    def schedules(self, table: dict[str, Any], prefix: str, tune: frozenset[str] | None
                  ) -> tuple[tuple[ScheduleSpec, ...], list[Named]]:
        """The schedules, and every domain of theirs by name (for :meth:`check_shared_names`)."""
        if "schedule" in table and "schedules" in table:
            raise self.error(join(prefix, "schedule"),
                             "give at most one of 'schedule' (one) or 'schedules' "
                             "(a list to compare)")
        entries = self.entries(table, prefix, "schedule")
        if not entries:
            return (), []
        result: list[ScheduleSpec] = []
        named: list[Named] = []
        for value, field in entries:
            spec, fields = self.schedule(value, field, tune)
            if any(other.label == spec.label for other in result):
                raise self.error(field, f"{spec.label!r} is listed twice; to compare variants of "
                                        "one schedule give each a distinct label = \"...\"")
            result.append(spec)
            named += [Named(key, fields[key], domain) for key, domain in _prefixed(spec).items()]
        return tuple(result), named

    def schedule(self, value: Any, field: str, tune: frozenset[str] | None,
                 nested: bool = False) -> tuple[ScheduleSpec, dict[str, str]]:
        """Schedule ``value``'s spec, and the field each of its domains comes from, by name."""
        name, own, _ = self.named(value, field, gdbench.schedules.names(), "schedule")
        label = name if nested else self.label(own, name, field)
        schedule_class = gdbench.schedules.REGISTRY[name]
        space_data = spaces.SCHEDULE_SPACES[name]
        keywords = schedule_class.keywords()
        defaults = signature_defaults(schedule_class.__init__)
        accepted = [k for k in keywords if k != space_data.learning_rate_keyword]
        accepted += [k for k in space_data.derived if k not in accepted]
        if name == "warmup":
            accepted = [k for k in accepted if k != "target"] + ["target"]
        self.check_keys(own, accepted, field)
        if space_data.learning_rate_keyword in own and space_data.learning_rate_keyword != "target":
            raise self.error(join(field, space_data.learning_rate_keyword),
                             "η comes from the optimizer's learning_rate (search.learning_rate)")

        target = None
        if "target" in own:
            if nested:
                raise self.error(join(field, "target"),
                                 "a warm-up target cannot itself have a target")
            target, target_fields = self.schedule(own["target"], join(field, "target"), tune,
                                                  nested=True)
            if target.name == "warmup":
                raise self.error(join(field, "target"),
                                 "a warm-up cannot ramp into another warm-up")

        # A schedule has no defaults for most keywords: a parameter left out of
        # `tune` is held at the middle of its default range rather than dropped.
        space: dict[str, Domain] = {
            key: domain if tune is None or key in tune else domain.middle()
            for key, domain in space_data.parameters.items()
        }
        origins: dict[str, str] = {}
        for key, item in own.items():
            if key == "target":
                continue
            for derived_name, derived in space_data.derived.items():
                if derived.keyword == key:
                    space.pop(derived_name, None)
            space[key] = self.domain(item, join(field, key), key,
                                     space_data.parameters.get(key), defaults.get(key))
            origins[key] = join(field, key)
        target_setup = None
        if target is not None:
            target_setup = (target.name, {key: domains.resolve(domain, _NOMINAL_STEPS).nominal()
                                          for key, domain in target.space.items()})
        fields = {SCHEDULE_PREFIX + key: origins.get(key, f"(default space of {name}).{key}")
                  for key in space}
        for key, domain in space.items():
            resolved = domains.resolve(domain, _NOMINAL_STEPS)
            for candidate, candidate_field in _candidates(resolved, fields[SCHEDULE_PREFIX + key]):
                values = {other: domains.resolve(d, _NOMINAL_STEPS).nominal()
                          for other, d in space.items() if other != key}
                values[key] = candidate
                try:
                    build_schedule(name, _NOMINAL_LEARNING_RATE, values, target_setup)
                except (ValueError, TypeError, KeyError) as error:
                    raise self.error(candidate_field, f"{name}: {error}") from None
        if target is not None:
            fields.update({TARGET_PREFIX + key[len(SCHEDULE_PREFIX):]: where
                           for key, where in target_fields.items()})
        return (ScheduleSpec(name=name, space=MappingProxyType(space), target=target, label=label),
                fields)

    # -- the rest -----------------------------------------------------------

    def check_tracked_lengths(self, named: list[Named]) -> None:
        """Every hyperparameter's name within what MLflow keeps of a parameter's name."""
        for name, field, _ in named:
            self.check_length(name, field, MAX_KEY_LENGTH)

    def check_shared_names(self, named: list[Named], grid: bool) -> None:
        """Refuse one name searched in two ways Optuna (or the grid sampler) cannot keep.

        Optuna keeps one kind of distribution per name across a study: floats
        and integers of any range, on one scale (log or not), or one set of
        choices. The grid sampler takes one grid per name.

        Args:
            named: every domain of the spec's optimizers, or of its schedules.
            grid: whether the study runs the grid sampler.
        """
        first: dict[str, Named] = {}
        for entry in named:
            domain = domains.resolve(entry.domain, _NOMINAL_STEPS)
            if not domain.searched:
                continue
            if entry.name not in first:
                first[entry.name] = entry._replace(domain=domain)
                continue
            other = first[entry.name]
            try:
                check_distribution_compatibility(other.domain.distribution(), domain.distribution())
            except ValueError:
                reason = ("Optuna keeps one kind of distribution per name in a study, and "
                          + _difference(other.domain.distribution(), domain.distribution()))
            else:
                if not grid or other.domain.grid() == domain.grid():
                    continue
                reason = "the grid sampler takes one grid per name"
            raise self.error(entry.field,
                             f"searched here as {_shown(domain, entry.name)}, but in {other.field} "
                             f"as {_shown(other.domain, entry.name)}: {reason}; "
                             "search it alike in both, for instance once in [search]")

    def check_grid(self, spec: StudySpec, field: str) -> None:
        for where, domain in searched_domains(spec):
            if domain.grid() is None:
                raise self.error(where, "the grid sampler needs every searched value as "
                                        "{choices = [...]} or a linear range with a step; "
                                        f"this one is {type(domain).__name__}")


def _shown(domain: Domain, name: str) -> str:
    """What ``domain`` searches for ``name``, as ``gdbench list`` says it, less the name."""
    return domain.describe(name).removeprefix(f"{name}: ")


def _difference(first: BaseDistribution, second: BaseDistribution) -> str:
    """Why Optuna keeps ``first`` and ``second`` apart, in a spec's words."""
    if type(first) is not type(second):
        return "a float, an integer and a set of choices are three kinds"
    if isinstance(first, CategoricalDistribution):
        return "two different sets of choices are two kinds"
    return "a log-scale and a linear range are two kinds"


def _prefixed(spec: ScheduleSpec) -> dict[str, Domain]:
    """A schedule's domains and its target's, by name."""
    found = {SCHEDULE_PREFIX + key: domain for key, domain in spec.space.items()}
    if spec.target is not None:
        found.update({TARGET_PREFIX + key: domain for key, domain in spec.target.space.items()})
    return found


def _candidates(domain: Domain, field: str) -> list[tuple[Any, str]]:
    """The values worth checking for ``domain``, each with its field."""
    return [(value, join(field, part) if part else field) for value, part in domain.candidates()]
