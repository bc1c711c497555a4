"""The lengths MLflow stores: a spec's texts are checked against them while it is read.

MLflow refuses an experiment name or an experiment tag over its limit, and cuts a run's
tag or parameter value over its own (with a warning): a text is held to the shortest
place it goes. The values are MLflow's (``mlflow.utils.validation``), pinned to them by a
test, and written here so that reading a spec does not import MLflow. TensorBoard
refuses no length of its own; a run folder's name past the file system's limit is
shortened, keeping the trial's number.
"""

from __future__ import annotations

__all__ = [
    "MAX_DESCRIPTION_LENGTH", "MAX_EXPERIMENT_NAME_LENGTH", "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH", "length_problem",
]

#: An experiment's name.
MAX_EXPERIMENT_NAME_LENGTH = 500
#: A parameter's, a metric's or a tag's name.
MAX_KEY_LENGTH = 250
#: A run parameter's value (a hyperparameter's, as text).
MAX_PARAM_VALUE_LENGTH = 6000
#: A study's description: the parent run's tag (8000 characters; the experiment's tag
#: takes 20000).
MAX_DESCRIPTION_LENGTH = 8000


def length_problem(text: str, limit: int) -> str:
    """Why MLflow would not keep ``text`` whole, or ``""`` when it fits ``limit``."""
    if len(text) <= limit:
        return ""
    return f"{text[:40]!r}... is {len(text)} characters long; MLflow keeps at most {limit}"
