"""Every key the study layer writes into Optuna and MLflow, and every reason it gives.

One home for these facts: the attribute keys of trials and studies, the tags of a
confirmation's reruns, and the texts that say why a trial failed or was pruned (the same
text in Optuna, MLflow and TensorBoard).
"""

from __future__ import annotations

__all__ = [
    "BUDGET_ATTR", "COMPARE_BUDGETS_ATTR", "CONFIRM_HPARAM", "CONFIRM_TAG", "CURVES_ATTR",
    "EPOCHS_RUN_ATTR", "FAIL_REASON_ATTR", "FIGURES_ATTR", "HYPERPARAMETERS_ATTR",
    "INITIAL_ATTR", "INTERRUPTED_ATTR", "METRICS_ATTR", "OPTIMIZER_ATTR", "PROCESSES_ATTR",
    "PRUNE_REASON_ATTR", "REUSED_ATTR", "SCHEDULE_ATTR", "SEEDS_ATTR", "SEED_ATTR", "SEED_TAG",
    "SETUP_ATTR",
    "SOURCE_ATTR", "SOURCE_TAG", "SPEC_ATTR", "SPEC_FILE_ATTR", "SPEC_TAG", "STALE_REASON",
    "TARGET_REACHED_ATTR", "interrupted_reason", "pruned_reason", "rerun_interrupted_reason",
    "stale_reason",
]

#: Trial user attributes: every value by its tracked name, the setup to rebuild the
#: trial, why it failed or was pruned, and the epochs it ran.
HYPERPARAMETERS_ATTR = "hyperparameters"
SETUP_ATTR = "setup"
FAIL_REASON_ATTR = "fail_reason"
PRUNE_REASON_ATTR = "prune_reason"
EPOCHS_RUN_ATTR = "epochs_run"
#: Whether a time-to-target trial's metric ever reached the target.
TARGET_REACHED_ATTR = "target_reached"

#: Study user attributes: the spec's summary, the budget shared by workers, the spec file,
#: and how many processes have joined the study (each samples with its own seed offset).
SPEC_ATTR = "spec"
BUDGET_ATTR = "trials_budget"
SPEC_FILE_ATTR = "spec_file"
PROCESSES_ATTR = "processes_started"
#: The finished trials the study's figures were last attached to their runs for.
FIGURES_ATTR = "figures_drawn_for"
#: A budget-matched comparison's budgets (``compare.budgets``), for ``gdbench report``.
COMPARE_BUDGETS_ATTR = "compare_budgets"

#: The TensorBoard hyperparameter that tells a confirmation's reruns (true) from the
#: study's trials (false, the value a session holds for a hyperparameter it lacks).
CONFIRM_HPARAM = "confirm"

#: Why a trial whose process stopped without a word failed: its heartbeat expired, and it is
#: queued again (:func:`stale_reason` gives every case).
STALE_REASON = "its process stopped (heartbeat lost); queued again"


#: A rerun's user attributes: the trial it reruns, its branch, its seed, its curves, the
#: evaluation before training (epoch 0, where the task's protocol gives one), its final
#: metrics, whether an interrupt stopped it (then it is run again), and whether it was not
#: run at all: the seed moves nothing in the task, so the trial's own value stands for it.
SOURCE_ATTR = "source_trial"
OPTIMIZER_ATTR = "optimizer"
SCHEDULE_ATTR = "schedule"
SEED_ATTR = "seed"
CURVES_ATTR = "curves"
INITIAL_ATTR = "initial"
METRICS_ATTR = "metrics"
INTERRUPTED_ATTR = "interrupted"
REUSED_ATTR = "reused_trial_value"

#: The companion study's user attribute: the seeds last asked for.
SEEDS_ATTR = "confirm_seeds"

#: Tags of a rerun's MLflow run, and the study's parent run's spec file.
CONFIRM_TAG = "gdbench.confirm"
SEED_TAG = "gdbench.seed"
SOURCE_TAG = "gdbench.source_trial"
SPEC_TAG = "gdbench.spec"


def pruned_reason(epoch: int, metric: str, value: float) -> str:
    """Why a trial was pruned after (0-based) ``epoch``, its objective ``metric`` then ``value``."""
    return f"pruned after epoch {epoch + 1}: {metric} = {float(value):.4g}"


def interrupted_reason(signal_name: str) -> str:
    """Why a trial stopped by a signal failed, as Optuna, MLflow and TensorBoard all give it."""
    return f"interrupted ({signal_name}); queued again"


def rerun_interrupted_reason(signal_name: str) -> str:
    """Why a confirmation's rerun stopped by a signal failed: nothing is queued; the next
    confirmation runs the seeds still missing."""
    return f"interrupted ({signal_name}); run again by the next confirmation"


def stale_reason(times: int, queued: bool) -> str:
    """Why a trial whose heartbeat expired failed, its process having stopped ``times`` times
    on it (its retries' included), and whether it is ``queued`` again."""
    if queued:
        return STALE_REASON
    return f"its process stopped (heartbeat lost) {times} times; not queued again"
