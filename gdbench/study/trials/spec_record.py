"""A study's spec as the study keeps it: what makes two specs the same study, and whether
a rerun's spec continues the study (the same spec, or one that adds optimizers)."""

from __future__ import annotations

import json

import optuna

from gdbench.study.errors import StudyError
from gdbench.study.keys import SPEC_ATTR
from gdbench.study.plan import build
from gdbench.study.spec.model import StudySpec

__all__ = ["check_same_spec", "summary"]


def summary(spec: StudySpec) -> str:
    """What makes two specs the same study, as JSON (kept as the study's ``spec`` attribute)."""
    return json.dumps({
        "task": spec.task.name,
        "task_options": {key: build.trackable(value) for key, value in spec.task.options.items()},
        "metric": spec.objective.metric, "direction": spec.objective.direction,
        "optimizers": [o.label for o in spec.optimizers],
        "schedules": [s.label for s in spec.schedules],
        # Only where set: the studies recorded before time-to-target objectives stay the same.
        **({"target": spec.objective.target, "measure": spec.objective.measure,
            "metric_direction": spec.objective.metric_direction}
           if spec.objective.target is not None else {}),
    })


def check_same_spec(spec: StudySpec, study: optuna.Study) -> list[str]:
    """Trials of one study must come from one spec: compare what the study recorded.

    A study grows by optimizers: a spec that lists every optimizer the study
    was created with, and more, is its spec too (a balanced study then gives
    each new optimizer its own trials, without touching the finished ones).

    Returns:
        The labels of the optimizers ``spec`` adds to the study's.

    Raises:
        StudyError: the study was created from another spec (or another
            direction), or would grow where its trials cannot be balanced.
    """
    if study.direction.name.lower() != spec.objective.direction:
        raise StudyError(
            f"objective.direction: study {spec.name!r} was created to "
            f"{study.direction.name.lower()}; rename the study or use another storage")
    recorded = study.user_attrs.get(SPEC_ATTR)
    if recorded is None:
        return []
    ours, theirs = json.loads(summary(spec)), json.loads(recorded)
    # Where the spec file lies is no part of the study (an older summary kept it).
    theirs.pop("source", None)
    added = [label for label in ours["optimizers"] if label not in theirs["optimizers"]]
    grows = bool(added) and set(theirs["optimizers"]) <= set(ours["optimizers"])
    if grows:
        theirs["optimizers"] = ours["optimizers"]
    if ours != theirs:
        differing = sorted(key for key in ours.keys() | theirs.keys()
                           if ours.get(key) != theirs.get(key))
        raise StudyError(f"spec: study {spec.name!r} was created from another spec (differs in "
                         f"{', '.join(differing)}); rename the study or use its spec (a study "
                         "grows by more optimizers only)")
    if grows and (not spec.balance or spec.sampler.name == "grid"):
        raise StudyError(f"optimizers: study {spec.name!r} grows by {', '.join(added)} only "
                         "when its trials take the optimizers in turn (balance = true, a "
                         "sampler other than grid)")
    return added
