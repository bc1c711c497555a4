"""The demo's two studies in MLflow, TensorBoard HParams and optuna-dashboard, read in Chromium.

``gdbench run studies/quickstart.toml`` runs once into a fresh home (a
population study of seven optimizers on the sigmoid neuron, Adam tuned on the
digits), and ``gdbench ui`` serves it, started as a person starts it; the
MLflow and TensorBoard pictures are those of the links it prints (MLflow's
with no click, TensorBoard's after the clicks it prints). Each test reads the page's DOM as a person sees it and holds it against
the stores: MLflow's REST API, Optuna's storage.

Set ``GDBENCH_SAVE_SCREENSHOTS=1`` to write the pictures of the demo that the
README and ``docs/running.md`` show: ``docs/images/mlflow_ui.png``,
``tensorboard_hparams.png`` (its parallel-coordinates view after the clicks
``gdbench ui`` prints) and ``optuna_dashboard.png``; this is the one way they
are made.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import servers
from browser import (
    CLOSE_ASSISTANT,
    DASHBOARD_STATE,
    DEEP_TEXT,
    HEIGHT,
    LOG_SCALE,
    MLFLOW_ROWS,
    WIDTH,
    Chromium,
    PrintedLinks,
    chromium,
    gdbench_ui,
    keep_screenshot,
    require_chromium,
)

from gdbench.study.defaults import OPTUNA_FILE

pytestmark = pytest.mark.slow

SPEC = Path(__file__).parents[1] / "studies" / "quickstart.toml"
SIGMOID, DIGITS = "quickstart_sigmoid", "quickstart_digits"

#: The MLflow runs table: run id → the name its row's link shows, for every row drawn.
RUN_ROWS = """(() => {
  const shown = {};
  for (const cell of document.querySelectorAll('[role=row] [col-id="attributes.`Run Name`"]')) {
    const link = cell.querySelector('a[href*="/runs/"]');
    if (link) { shown[link.getAttribute("href").split("/runs/")[1]] = link.textContent.trim(); }
  }
  return JSON.stringify(shown);
})()"""

#: The MLflow runs table: clicks the expander (+) in the row of run RUN_ID; how many were clicked.
EXPAND_RUN = """(() => {
  const link = document.querySelector('[col-id="attributes.`Run Name`"] a[href$="/runs/RUN_ID"]');
  const button = link && link.closest('[col-id="attributes.`Run Name`"]').querySelector("button");
  if (button) { button.click(); }
  return button ? 1 : 0;
})()"""

#: TensorBoard HParams table view: the header's column names, and the first column's
#: text (the trial's name) of each row drawn.
HPARAMS_TABLE = """(() => {
  const table = {columns: [], rows: []};
  const walk = (root) => {
    for (const content of root.querySelectorAll("vaadin-grid-cell-content")) {
      const cell = content.assignedSlot && content.assignedSlot.closest("th, td");
      const text = content.textContent.trim();
      if (!cell || !text) { continue; }
      if (cell.closest("thead")) { table.columns.push(text); }
      else if (cell.closest("tbody") && cell.parentElement.firstElementChild === cell
               && !cell.parentElement.hidden) { table.rows.push(text); }
    }
    for (const element of root.querySelectorAll("*")) {
      if (element.shadowRoot) { walk(element.shadowRoot); }
    }
  };
  walk(document);
  return JSON.stringify(table);
})()"""

#: The page's text (shadow roots included), each run of white space one space, as JSON.
SPACED_TEXT = f"JSON.stringify({DEEP_TEXT}.replace(/\\s+/g, ' '))"

#: Scrolls the page so that the heading whose text is HEADING sits under the top bar.
SCROLL_TO_HEADING = """(() => {
  const heading = Array.from(document.querySelectorAll("h1, h2, h3, h4, h5, h6"))
    .find((element) => element.textContent.trim() === "HEADING");
  if (heading) { window.scrollBy(0, heading.getBoundingClientRect().top - 90); }
  return Boolean(heading);
})()"""


@dataclasses.dataclass(frozen=True)
class StudyRuns:
    """A study's experiment in MLflow, read through the server's REST API.

    Attributes:
        experiment_id: the experiment's id.
        parent: (run id, run name) of the study's run.
        trials: run id → run name of each trial's run, nested under the parent.
        metrics: every metric key the trials' runs have.
    """

    experiment_id: str
    parent: tuple[str, str]
    trials: dict[str, str]
    metrics: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Demo:
    """The demo's home, its dashboards' addresses and what its stores hold.

    Attributes:
        home: the ``--home`` of the run.
        urls: tool (``mlflow``, ``tensorboard``, ``optuna-dashboard``) → its address.
        trials: study → its Optuna trials.
        runs: study → its MLflow runs.
        printed: what ``gdbench ui`` printed.
    """

    home: Path
    urls: dict[str, str]
    trials: dict[str, list[optuna.trial.FrozenTrial]]
    runs: dict[str, StudyRuns]
    printed: PrintedLinks


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base() -> int:
    """A port P such that P, P+1 and P+2 are free on 127.0.0.1 (``gdbench ui --port-base P``)."""
    for _ in range(100):
        base = servers.free_port()
        if base + 2 <= 65535 and _port_free(base + 1) and _port_free(base + 2):
            return base
    raise RuntimeError("no three free ports in a row on 127.0.0.1")


def study_runs(mlflow_url: str, study: str) -> StudyRuns:
    """The study's experiment, its run and its trials' runs, from the MLflow server."""
    query = urllib.parse.urlencode({"experiment_name": study})
    experiment = servers.get_json(f"{mlflow_url}/api/2.0/mlflow/experiments/get-by-name?{query}")
    experiment_id = experiment["experiment"]["experiment_id"]
    found = servers.post_json(f"{mlflow_url}/api/2.0/mlflow/runs/search",
                              {"experiment_ids": [experiment_id], "max_results": 1000})
    parents, trials, parent_ids, metrics = [], {}, set(), set()
    for run in found["runs"]:
        tags = {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}
        identity = (run["info"]["run_id"], run["info"]["run_name"])
        if "mlflow.parentRunId" in tags:
            trials[identity[0]] = identity[1]
            parent_ids.add(tags["mlflow.parentRunId"])
            metrics.update(metric["key"] for metric in run["data"].get("metrics", []))
        else:
            parents.append(identity)
    assert len(parents) == 1, parents
    assert parent_ids == {parents[0][0]}
    return StudyRuns(experiment_id, parents[0], trials, frozenset(metrics))


def js_number(value: float) -> str:
    """``value`` as JavaScript writes it (positional from 1e-6 on, as the dashboard's params are)."""
    return np.format_float_positional(value, trim="-")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    require_chromium()
    root = tmp_path_factory.mktemp("demo")
    home = root / "home"
    run = subprocess.run(
        [sys.executable, "-m", "gdbench", "run", str(SPEC), "--home", str(home), "--quiet",
         "--jobs", "2"],
        cwd=root, env=servers.worker_environment(), capture_output=True, text=True, timeout=600,
        check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    storage = f"sqlite:///{home / OPTUNA_FILE}"
    trials = {study: optuna.load_study(study_name=study, storage=storage).trials
              for study in (SIGMOID, DIGITS)}
    with gdbench_ui(home, root, free_port_base()) as printed:
        urls = {tool: printed.address[title].split("/#")[0] for tool, title in (
            ("mlflow", "MLflow"), ("tensorboard", "TensorBoard"),
            ("optuna-dashboard", "optuna-dashboard"))}
        runs = {study: study_runs(urls["mlflow"], study) for study in (SIGMOID, DIGITS)}
        yield Demo(home=home, urls=urls, trials=trials, runs=runs, printed=printed)


@pytest.fixture()
def browser() -> Iterator[Chromium]:
    with chromium() as page:
        yield page


def trial_number(run_name: str) -> int:
    """The trial number a run's name ends with (``adam · η=0.0216 β1=0.7 · #6`` → 6)."""
    match = re.fullmatch(r"[a-z_]+ · η=\S+( \S+=\S+)* · #(\d+)", run_name)
    assert match, run_name
    return int(match.group(2))


@pytest.mark.parametrize("study", [SIGMOID, DIGITS])
def test_mlflow_lists_every_trials_run_by_name_under_its_studys_run(
        demo: Demo, browser: Chromium, study: str) -> None:
    runs = demo.runs[study]
    assert sorted(map(trial_number, runs.trials.values())) == sorted(
        trial.number for trial in demo.trials[study])
    parent_id, parent_name = runs.parent
    # Tall enough that the table draws every row.
    browser.resize(WIDTH, 600 + 40 * len(runs.trials))
    browser.open(f"{demo.urls['mlflow']}/#/experiments/{runs.experiment_id}/runs")
    browser.wait_for_text([parent_name, f"{len(runs.trials) + 1} matching runs"])
    # The trials are folded under the study's run ...
    assert browser.wait_for_json(RUN_ROWS, bool) == {parent_id: parent_name}
    assert browser.evaluate(EXPAND_RUN.replace("RUN_ID", parent_id)) == 1
    # ... and each is there, by its name, once it is unfolded.
    shown = browser.wait_for_json(RUN_ROWS, lambda rows: len(rows) > len(runs.trials))
    assert shown == {parent_id: parent_name, **runs.trials}


@pytest.mark.parametrize("study", [SIGMOID, DIGITS])
def test_mlflow_printed_link_ranks_the_studys_trials_with_their_optimizer(
        demo: Demo, browser: Chromium, study: str, tmp_path: Path) -> None:
    runs = demo.runs[study]
    best = servers.post_json(f"{demo.urls['mlflow']}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [runs.experiment_id], "filter": "tags.`gdbench.role` = 'trial'",
        "order_by": ["metrics.`objective` ASC"], "max_results": 1000})["runs"]
    browser.open(demo.printed.links["MLflow"][study])
    browser.wait_for_text([f"{len(runs.trials)} matching runs", "Sort: objective"])
    rows = browser.wait_for_json(MLFLOW_ROWS, lambda rows: len(rows) >= min(10, len(best)))
    # Best first, the optimizer beside each: the rows drawn are the best ones.
    assert [row["run"] for row in rows] == [run["info"]["run_id"] for run in best][:len(rows)]
    params = {run["info"]["run_id"]: {p["key"]: p["value"] for p in run["data"]["params"]}
              for run in best}
    assert [row["params.`optimizer`"] for row in rows] == [
        params[row["run"]]["optimizer"] for row in rows]
    if study == SIGMOID:
        # The assistant panel opens on a fresh profile only; the table needs the room.
        browser.evaluate(CLOSE_ASSISTANT)
        time.sleep(3)
        keep_screenshot(browser.screenshot(tmp_path / "mlflow_ui.png"))


def test_tensorboard_hparams_lists_every_trial_of_the_home_with_its_study_and_metrics(
        demo: Demo, browser: Chromium, tmp_path: Path) -> None:
    # Each row is named as the trial's MLflow run, then its study.
    expected = sorted(f"{name} · {study}" for study, runs in demo.runs.items()
                      for name in runs.trials.values())
    assert len(expected) == sum(len(trials) for trials in demo.trials.values())
    # The table draws only the rows in view: tall enough for all of them.
    browser.resize(WIDTH, 600 + 70 * len(expected))
    browser.open(demo.printed.address["TensorBoard"])
    table = browser.wait_for_json(HPARAMS_TABLE, lambda t: len(t["rows"]) >= len(expected),
                                  timeout_s=120)
    assert sorted(table["rows"]) == expected
    columns = table["columns"]
    assert {"study", "optimizer", "schedule", "learning_rate"} <= set(columns), columns
    # The metrics every trial has; the objective named with what it is in each study.
    assert "loss" in demo.runs[SIGMOID].metrics
    assert {"val_loss", "val_accuracy"} <= demo.runs[DIGITS].metrics
    objective = f"objective ({DIGITS}: val_loss; {SIGMOID}: loss)"
    assert {objective, "loss"} <= set(columns), columns
    assert "val_accuracy" not in columns
    browser.resize(WIDTH, HEIGHT)

    # The clicks `gdbench ui` prints: every complete trial of both studies is a line,
    # with every box of the metrics ticked; then log axes for η and the objective.
    assert demo.printed.hints["TensorBoard"] == (
        "Parallel Coordinates View; above the plot, Logarithmic under learning_rate and "
        "objective")
    assert browser.click_text("Parallel Coordinates View") == 1
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE
                   for trials in demo.trials.values() for t in trials)
    state = browser.wait_for_json(DASHBOARD_STATE, lambda s: s["lines"] == complete,
                                  timeout_s=60)
    assert {objective, "loss", "optimizer", "study"} <= set(state["ticked"]), state
    # Each view (parallel coordinates, scatter matrix) has its own scale buttons.
    assert browser.evaluate(LOG_SCALE % json.dumps(["learning_rate", objective])) >= 2
    browser.wait_for_json(DASHBOARD_STATE, lambda s: s["lines"] == complete, timeout_s=30)
    time.sleep(2)
    keep_screenshot(browser.screenshot(tmp_path / "tensorboard_hparams.png"))


def test_optuna_dashboard_shows_the_digits_params_by_the_specs_names(
        demo: Demo, browser: Chromium, tmp_path: Path) -> None:
    trials = demo.trials[DIGITS]
    names = ["learning_rate", "beta_1", "beta_2"]
    assert all(sorted(trial.params) == sorted(names) for trial in trials)
    url = demo.urls["optuna-dashboard"]
    (study_id,) = [summary["study_id"] for summary in
                   servers.get_json(f"{url}/api/studies")["study_summaries"]
                   if summary["study_name"] == DIGITS]
    numbers = ",".join(str(trial.number) for trial in trials)
    browser.open(f"{url}/dashboard/studies/{study_id}/trials?numbers={numbers}")
    # Each trial's details, its "Parameter" list among them.
    text = browser.wait_for_json(SPACED_TEXT, lambda t: t.count(" Parameter ") == len(trials))
    for trial in trials:
        for name in names:
            assert f"{name} {js_number(trial.params[name])}" in text, (trial.number, name)
    assert "one_minus_beta_2" not in text

    browser.open(f"{url}/dashboard/studies/{study_id}")
    # The importances are drawn once their plot names its axis too.
    text = browser.wait_for_json(SPACED_TEXT, lambda t: "Params = [" in t and t.count(
        "Hyperparameter Importance") >= 2 and all(name in t for name in names))
    best = min((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE),
               key=lambda t: t.value)
    assert f"Best Trial (number={best.number})" in text
    for name in names:
        assert f"{name}: {js_number(best.params[name])}" in text
    assert "one_minus_beta_2" not in text
    assert browser.evaluate(SCROLL_TO_HEADING.replace("HEADING", "Hyperparameter Importance"))
    time.sleep(2)
    keep_screenshot(browser.screenshot(tmp_path / "optuna_dashboard.png"))
