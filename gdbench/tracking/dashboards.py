"""What the dashboards open on: each study's view in the MLflow UI, the TensorBoard pages.

MLflow's UI (3.x) opens an experiment in the mode its tag ``mlflow.experimentKind``
names, guessing one where it has none (a study's experiment, holding no
model, is taken for GenAI work: traces, no runs table). A study's experiment
is tagged for model training (:data:`MODEL_TRAINING_KIND`) when the study
starts, unless someone chose its kind by hand.

The UI also restores a view saved in an experiment tag,
``mlflow.sharedViewState.<key>``, when its address says ``viewStateShareKey=<key>``
(its "Share" button writes them). Every study saves one, :func:`view_key`
(``gdbench-<study>``): its trials' runs only (not the study's own run, not
another study's runs in the same experiment), best first, with the optimizer,
the schedule, the searched hyperparameters and the objective as columns. Each
trial's run carries the colour of its optimizer (``mlflow.runColor``), the one
of gdbench's figures, so that the charts tell optimizers apart. A study's
confirmation reruns are a study of their own (``<study>.confirm``) and get their
own view.

:func:`mlflow_links` reads those views back from a store and gives their
addresses; :func:`tensorboard_links` each study's curves in TensorBoard, and
:data:`TENSORBOARD_CLICKS` the clicks its HParams dashboard cannot be told in
advance.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gdbench._plot_style import color_for
from gdbench.tracking._experiment import STUDY_EXPERIMENT_FILE

__all__ = [
    "EXPERIMENT_KIND_TAG",
    "MODEL_TRAINING_KIND",
    "RUN_COLOR_TAG",
    "VIEW_TAG_PREFIX",
    "Link",
    "experiment_kind_to_set",
    "mlflow_links",
    "run_color_tags",
    "study_view",
    "TENSORBOARD_CLICKS",
    "mlflow_view_url",
    "tensorboard_links",
    "tensorboard_studies",
    "view_key",
]

#: The experiment tag that sets the mode MLflow's UI opens an experiment in.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"

#: Its value for model training: the runs table, parameters and metrics.
MODEL_TRAINING_KIND = "custom_model_development"

#: Kinds the UI guessed (or none): replaced by :data:`MODEL_TRAINING_KIND`; a kind
#: chosen by hand is kept.
_GUESSED_KINDS = frozenset({"", "no_inferred_type", "genai_development_inferred",
                            "custom_model_development_inferred"})

#: The experiment tags of saved views: the prefix, then the view's key.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."

#: The run tag holding a run's colour in the UI's charts.
RUN_COLOR_TAG = "mlflow.runColor"

#: The key of every gdbench view starts so.
_VIEW_KEY_PREFIX = "gdbench-"

#: The UI's own starting state (``ExperimentPageUIState``): a saved view replaces it
#: whole, so a view carries every field.
_UI_STATE: dict[str, Any] = {
    "columnOrder": [], "columnWidths": {}, "runsExpanded": {}, "runsPinned": [],
    "runsHidden": [], "runsVisibilityMap": {}, "runsHiddenMode": "FIRST_10_RUNS",
    "viewMaximized": False, "runListHidden": False, "isAccordionReordered": False,
    "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None,
    "groupsExpanded": {}, "autoRefreshEnabled": True,
    "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0,
                              "selectedXAxisMetricKey": ""},
}


class Link(NamedTuple):
    """One address to print: what it shows, and the address."""

    title: str
    url: str


def view_key(study_name: str) -> str:
    """``gdbench-<study>``: the key of a study's saved view, as its address writes it.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``-``,
    and a short hash of the name then keeps two such studies apart.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", study_name)
    if safe != study_name:
        safe += "-" + hashlib.sha1(study_name.encode()).hexdigest()[:8]
    return _VIEW_KEY_PREFIX + safe


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def study_view(study_name: str, objective: str, columns: Sequence[str], *,
               role_tag: str, study_tag: str, maximize: bool) -> str:
    """The saved view of a study's trials, as the tag's JSON value.

    Args:
        study_name: the study.
        objective: the metric the runs are ranked by.
        columns: the parameters shown as columns, in order.
        role_tag: the run tag that says ``trial``.
        study_tag: the run tag holding the study's name.
        maximize: best first is highest first.
    """
    search = f"tags.`{study_tag}` = {_quoted(study_name)} AND tags.`{role_tag}` = 'trial'"
    selected = ([f"params.`{name}`" for name in columns]
                + [f"metrics.`{objective}`"])
    return json.dumps({
        "searchFilter": search,
        "orderByKey": f"metrics.`{objective}`",
        "orderByAsc": not maximize,
        **_UI_STATE,
        "selectedColumns": selected,
        # The optimizer, then the objective, then the hyperparameters: MLflow's own order
        # puts the metrics first and the parameters by name.
        "columnOrder": [*selected[:1], selected[-1], *selected[1:-1]],
        # Wide enough for a float's every digit and its exponent (1.9452399431e-31).
        "columnWidths": {selected[-1]: 190},
    })


def experiment_kind_to_set(tags: Mapping[str, str]) -> bool:
    """Whether an experiment with ``tags`` gets :data:`MODEL_TRAINING_KIND`: it has no
    kind, or one the UI guessed."""
    return tags.get(EXPERIMENT_KIND_TAG, "") in _GUESSED_KINDS


def run_color_tags(params: Mapping[str, Any]) -> dict[str, str]:
    """A trial run's colour tag: its optimizer's colour in gdbench's figures (none
    without an optimizer)."""
    optimizer = params.get("optimizer")
    return {RUN_COLOR_TAG: color_for(str(optimizer))} if optimizer else {}


def mlflow_links(tracking_uri: str, address: str) -> list[Link]:
    """One link per study view saved in the store, titled by its study, in study order.

    A SQLite store is read as it is, read only (no link where it does not exist
    yet): the MLflow server started beside may be creating or upgrading it, which
    opening it through MLflow's client would race.

    Args:
        tracking_uri: the MLflow store (``sqlite:///HOME/mlflow.db``).
        address: where the UI serves it (``http://127.0.0.1:5000``).
    """
    links = [Link(title, mlflow_view_url(address, experiment_id, key[len(VIEW_TAG_PREFIX):]))
             for experiment_id, key, value in _saved_views(tracking_uri)
             if (title := _view_study(value)) is not None]
    return sorted(links, key=lambda link: (link.title.endswith(".confirm"), link.title))


def _saved_views(tracking_uri: str) -> list[tuple[str, str, str]]:
    """(experiment id, tag key, view) of every gdbench view saved in the store's live experiments."""
    prefix = VIEW_TAG_PREFIX + _VIEW_KEY_PREFIX
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///"):])
        if not path.is_file():
            return []
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                                                timeout=10)) as connection:
            rows = connection.execute(
                "SELECT t.experiment_id, t.key, t.value FROM experiment_tags AS t "
                "JOIN experiments AS e ON e.experiment_id = t.experiment_id "
                "WHERE e.lifecycle_stage = 'active' AND substr(t.key, 1, ?) = ?",
                (len(prefix), prefix)).fetchall()
        return [(str(experiment_id), key, value) for experiment_id, key, value in rows]
    # mlflow takes seconds to import; only the dashboards' links need it here.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    return [(experiment.experiment_id, key, value)
            for experiment in client.search_experiments(max_results=50_000)
            for key, value in experiment.tags.items() if key.startswith(prefix)]


def mlflow_view_url(address: str, experiment_id: str, key: str) -> str:
    """The address of the saved view ``key`` of an experiment, in model-training mode."""
    query = urllib.parse.urlencode({"viewStateShareKey": key,
                                    "workflowType": "machine_learning"})
    return f"{address}/#/experiments/{experiment_id}/runs?{query}"


def _view_study(value: str) -> str | None:
    """The study a saved view shows, from its search filter; ``None`` for no gdbench view."""
    try:
        search = json.loads(value).get("searchFilter", "")
    except (ValueError, AttributeError):
        return None
    found = re.match(r"tags\.`[^`]+` = '((?:[^'\\]|\\.)*)'", search)
    return re.sub(r"\\(.)", r"\1", found.group(1)) if found else None


#: What TensorBoard's HParams dashboard cannot be told in advance (its axes' scales;
#: it colours lines by a number only), as the clicks that do it.
TENSORBOARD_CLICKS = ("Parallel Coordinates View; above the plot, Logarithmic under "
                      "learning_rate and objective")


def tensorboard_studies(folder: Path) -> list[str]:
    """The studies whose logs lie in ``folder`` (``HOME/tensorboard``), confirmation
    reruns last."""
    found = [path.parent.name for path in folder.glob(f"*/{STUDY_EXPERIMENT_FILE}")]
    return sorted(found, key=lambda name: (name.endswith(".confirm"), name))


def tensorboard_links(address: str, studies: Iterable[str]) -> list[Link]:
    """Each study's curves alone in TensorBoard: its runs' folder as the run filter."""
    links = []
    for study in studies:
        query = urllib.parse.urlencode({"runFilter": "^" + re.escape(study) + "/"},
                                       quote_via=urllib.parse.quote)
        links.append(Link(study, f"{address}/?{query}#timeseries"))
    return links
