"""What the dashboards open on: a study's saved MLflow view, its experiment's kind, its runs'
colours, and the links that ``gdbench ui`` prints (:mod:`gdbench.tracking.dashboards`).

The browser tests (``test_browser.py``, ``test_dashboards.py``) open these links in
Chromium; these read what the store holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gdbench._plot_style import color_for
from gdbench.tracking import HParamDomain, StudyTracker
from gdbench.tracking.dashboards import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    VIEW_TAG_PREFIX,
    Link,
    mlflow_links,
    tensorboard_links,
    tensorboard_studies,
    view_key,
)

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

DOMAINS = {
    "optimizer": HParamDomain("categorical", choices=("gd", "adam")),
    "schedule": HParamDomain.fixed("none"),
    "learning_rate": HParamDomain("float", 1e-3, 1.0, log=True),
    "beta_1": HParamDomain("float", 0.5, 0.99),
    "epochs": HParamDomain.fixed(10),
}


def run_study(uri: str, name: str, tensorboard: Path | None = None, *,
              direction: str = "minimize") -> None:
    with StudyTracker(study_name=name, tracking_uri=uri, tensorboard_dir=tensorboard) as tracker:
        tracker.start(hparam_domains=DOMAINS, metrics=["loss"], direction=direction)
        for number, (optimizer, value) in enumerate([("adam", 0.3), ("gd", 0.1)]):
            params = {"optimizer": optimizer, "schedule": "none", "learning_rate": 0.01,
                      "beta_1": 0.9, "epochs": 10}
            with tracker.start_trial(number, params) as trial:
                trial.finish("COMPLETE", value=value)


def test_a_study_saves_its_view_of_its_trials_best_first(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_study(uri, "views", direction="maximize")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("views")
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    view = json.loads(experiment.tags[VIEW_TAG_PREFIX + "gdbench-views"])
    assert view["searchFilter"] == ("tags.`gdbench.study` = 'views' AND "
                                    "tags.`gdbench.role` = 'trial'")
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`objective`", False)
    # The optimizer and the searched hyperparameters, not the fixed schedule or epochs.
    assert view["selectedColumns"] == ["params.`optimizer`", "params.`learning_rate`",
                                       "params.`beta_1`", "metrics.`objective`"]
    assert view["columnOrder"][:2] == ["params.`optimizer`", "metrics.`objective`"]
    # The filter finds exactly the trials, each in its optimizer's colour.
    runs = client.search_runs([experiment.experiment_id], view["searchFilter"])
    assert sorted(run.data.tags["mlflow.runColor"] for run in runs) == sorted(
        [color_for("adam"), color_for("gd")])


def test_ui_links_name_each_studys_view(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_study(uri, "b study", tmp_path / "tensorboard" / "b study")
    run_study(uri, "a", tmp_path / "tensorboard" / "a")
    client = MlflowClient(uri)
    ids = {name: client.get_experiment_by_name(name).experiment_id for name in ("a", "b study")}
    key = view_key("b study")
    assert key.startswith("gdbench-b-study-") and key != view_key("b-study")
    assert mlflow_links(uri, "http://127.0.0.1:5000") == [
        Link("a", f"http://127.0.0.1:5000/#/experiments/{ids['a']}/runs?"
                  "viewStateShareKey=gdbench-a&workflowType=machine_learning"),
        Link("b study", f"http://127.0.0.1:5000/#/experiments/{ids['b study']}/runs?"
                        f"viewStateShareKey={key}&workflowType=machine_learning"),
    ]
    studies = tensorboard_studies(tmp_path / "tensorboard")
    assert studies == ["a", "b study"]
    assert tensorboard_links("http://127.0.0.1:6006", studies)[1] == Link(
        "b study", "http://127.0.0.1:6006/?runFilter=%5Eb%5C%20study%2F#timeseries")


def test_a_kind_chosen_by_hand_is_kept_and_a_guessed_one_replaced(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    for name, kind, kept in [("chosen", "genai_development", "genai_development"),
                             ("guessed", "genai_development_inferred", MODEL_TRAINING_KIND)]:
        experiment_id = client.create_experiment(name)
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, kind)
        run_study(uri, name)
        assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == kept


def test_the_hparams_objective_says_what_it_is_in_the_study() -> None:
    from gdbench.study.spec.model import ObjectiveSpec
    from gdbench.study.trials.session import objective_text

    assert objective_text(ObjectiveSpec("val_loss", "minimize")) == "val_loss"
    assert objective_text(ObjectiveSpec("val_accuracy", "minimize", target=0.9, measure="epochs",
                                        metric_direction="maximize")) == \
        "epochs to val_accuracy ≥ 0.9"


def test_a_bad_direction_is_named(tmp_path: Path) -> None:
    tracker = StudyTracker(study_name="s", tracking_uri=None, tensorboard_dir=tmp_path)
    with pytest.raises(ValueError, match="^direction: expected 'minimize' or 'maximize'"):
        tracker.start(hparam_domains=DOMAINS, metrics=["loss"], direction="down")
