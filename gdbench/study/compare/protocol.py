"""The protocol note of a comparison: what was searched, how, and how the best was chosen.

A comparison is only as fair as its protocol (Choi et al., 2019; Schmidt et
al., 2021): the search spaces, the budgets, the seeds, the sampler and the
rule that picks a winner. :func:`protocol_note` writes them down from the
spec, as Markdown; ``gdbench run`` keeps it as ``protocol.md`` in the report
folder, and so on the MLflow parent run (under ``report/``), for every study
that compares optimizers or schedules (:func:`needs_protocol`).
"""

from __future__ import annotations

from pathlib import Path

from gdbench._files import written_whole
from gdbench.study.spec.model import StudySpec

__all__ = ["PROTOCOL_FILE", "needs_protocol", "protocol_note", "write_protocol"]

#: The protocol note's file name in the report folder.
PROTOCOL_FILE = "protocol.md"


def needs_protocol(spec: StudySpec) -> bool:
    """Whether ``spec`` compares: several optimizers or schedules, or a budget-matched study."""
    return spec.compares_optimizers or spec.compares_schedules or spec.compare is not None


def _split(spec: StudySpec) -> str:
    metric = spec.objective.metric
    if spec.task.toy:
        return (f"`{metric}` of the toy task's training objective (a toy task has no "
                "held-out data: it is the function being minimized)")
    if metric.startswith("val_"):
        return (f"`{metric}`, on the validation split (held out from training; the test split "
                "never chooses)")
    return f"`{metric}`, on the training data"


def _optimizer_lines(spec: StudySpec) -> list[str]:
    from gdbench.study.plan.build import (
        optimizer_defaults,  # keeps TensorFlow out of start-up
    )

    lines = []
    for optimizer in spec.optimizers:
        name = optimizer.name if optimizer.label == optimizer.name else (
            f"{optimizer.name}, as {optimizer.label}")
        lines.append(f"- **{name}**")
        for keyword, domain in optimizer.space.items():
            state = "searched" if domain.searched else "fixed"
            lines.append(f"  - {domain.describe(keyword)} ({state})")
        for keyword, value in optimizer_defaults(optimizer.name).items():
            if keyword not in optimizer.space:
                lines.append(f"  - {keyword} = {value!r} (its default, not searched)")
    return lines


def _schedule_lines(spec: StudySpec) -> list[str]:
    if not spec.schedules:
        return ["- none: η is constant"]
    lines = []
    for schedule in spec.schedules:
        target = f", ramping into {schedule.target.name}" if schedule.target is not None else ""
        lines.append(f"- **{schedule.label}** ({schedule.name}{target})")
        spaces = [schedule.space] + ([schedule.target.space] if schedule.target else [])
        for space in spaces:
            lines += [f"  - {domain.describe(key)}" for key, domain in space.items()]
    return lines


def protocol_note(spec: StudySpec) -> str:
    """The protocol of ``spec``'s study as Markdown.

    Sections: the task and objective; the search spaces of every optimizer
    (searched keywords with their ranges, fixed values, defaults left
    alone) and schedule; the trials, sampler, pruner and budgets; the seeds
    (and the confirmation over seeds, ``spec.confirm``); and how the best
    configuration is chosen (the metric, its direction, the split).

    Args:
        spec: the study spec.
    """
    branches = len(spec.optimizers) * max(1, len(spec.schedules))
    epochs = spec.epochs if spec.epochs is not None else "the task default"
    batch_size = spec.batch_size if spec.batch_size is not None else "the task default"
    best = "lowest" if spec.objective.direction == "minimize" else "highest"
    options = ", ".join(f"{key} = {value!r}" for key, value in spec.task.options.items())
    lines = [f"# Protocol of study {spec.name}", ""]
    if spec.description:
        lines += [spec.description, ""]
    lines += [
        "## Task and objective", "",
        f"- Task: `{spec.task.name}` ({options})",
        f"- Epochs per trial: {epochs}; batch size: {batch_size}",
        f"- Objective: {_split(spec)}, at the last epoch, {spec.objective.direction}d",
        "", "## Search spaces", "",
        ("Optimizers (keyword: domain; log-uniform ranges are sampled on a log scale, decay "
         "rates among β whose 1 − β are log-spaced):"), "",
        *_optimizer_lines(spec),
        "", "Schedules:", "",
        *_schedule_lines(spec),
        "", "## Budget and search", "",
        f"- Branches (optimizer × schedule): {branches}",
        f"- Sampler: {spec.sampler.name} (seed {spec.sampler.seed}"
        + "".join(f", {key} = {value!r}" for key, value in spec.sampler.options.items()) + ")",
        f"- Pruner: {spec.pruner.name}",
    ]
    if spec.compare is not None:
        largest = max(spec.compare.budgets)
        lines += [
            (f"- Budget-matched: every branch gets {largest} trials of one random search, the "
             "first at its defaults (Keras defaults of the optimizer, the spec's fixed values, "
             "schedule parameters at the middle of their ranges); "
             f"{branches * largest} trials in all"),
            (f"- Budgets reported: the best after 1 trial (the defaults) and after "
             f"{', '.join(str(b) for b in spec.compare.budgets)} trials, per branch, and the "
             "best of all branches at their defaults (`budgets.csv`, `budgets.png`)"),
        ]
    else:
        balance = "balanced: the branches take turns" if spec.balance else (
            "not balanced: the sampler chooses the branch")
        lines.append(f"- Trials: {spec.trials} in all, {balance}")
    lines += ["", "## Seeds", "",
              (f"- Study seed: {spec.seed} (the sampler's, and the task's unless it sets its "
               f"own: task seed {spec.task.options.get('seed', spec.seed)})")]
    if spec.confirm is not None:
        lines.append(f"- Confirmation: each branch's best configuration is run again over "
                     f"{spec.confirm.seeds} seeds")
    else:
        lines.append("- Confirmation: none; each result is one run of one seed")
    lines += [
        "", "## Choosing the best", "",
        (f"- Within each branch, the trial with the {best} {_split(spec)} is its best "
         "configuration; the leaderboard ranks every trial by it."),
        "- Failed (diverged) and pruned trials spend their turn and are never chosen.",
    ]
    return "\n".join(lines) + "\n"


def write_protocol(spec: StudySpec, out_dir: str | Path) -> Path:
    """Write :func:`protocol_note` as ``protocol.md`` into ``out_dir``; its path."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PROTOCOL_FILE
    with written_whole(path) as partial:
        partial.write_text(protocol_note(spec), encoding="utf-8")
    return path
