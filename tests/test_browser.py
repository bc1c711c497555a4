"""The study's runs and sessions, as a person sees them: the MLflow UI and TensorBoard in Chromium.

A headless Chromium (``browser.py``) opens the UIs of the servers that
``test_distributed.py`` uses (the same session-wide stack and three-worker
study), waits until the page shows every trial, and takes a screenshot. The
pictures of the README and ``docs/running.md`` are those of the demo's pages,
which ``test_dashboards.py`` takes.

Then a home of two small studies (the sigmoid neuron in mini-batches, three optimizers,
confirmed over two seeds; Adam on the digits, whose metrics the sigmoid's
trials lack) is served by ``gdbench ui`` as a person starts it, and Chromium
opens exactly the links it prints: MLflow's view of each study lists its
trials, and only them, best first, with the optimizer's column; TensorBoard's
parallel-coordinates view draws one line per complete trial of the home, every
box ticked.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import servers
from browser import (
    CLOSE_ASSISTANT,
    DASHBOARD_STATE,
    HEIGHT,
    MLFLOW_ROWS,
    WIDTH,
    Chromium,
    PrintedLinks,
    check_screenshot,
    chromium,
    gdbench_ui,
    require_chromium,
)
from test_dashboards import free_port_base

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium()


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> servers.Stack:
    return servers.shared_stack(request)


@pytest.fixture(scope="module")
def three_workers(stack: servers.Stack) -> servers.StudyRun:
    return servers.cached("three_workers", lambda: servers.three_worker_study(stack))


@pytest.fixture()
def browser() -> Any:
    with chromium() as page:
        yield page


def test_mlflow_ui_lists_every_trial_run_under_the_study(
        browser: Chromium, stack: servers.Stack, three_workers: servers.StudyRun,
        tmp_path: Path) -> None:
    query = urllib.parse.urlencode({"experiment_name": three_workers.name})
    experiment = servers.get_json(f"{stack.mlflow_uri}/api/2.0/mlflow/experiments/get-by-name?{query}")
    experiment_id = experiment["experiment"]["experiment_id"]
    # Only the trials' runs, best first: the UI lists them flat, not folded under the parent.
    view = urllib.parse.urlencode({
        "searchFilter": "tags.`gdbench.role` = 'trial'",
        "orderByKey": "metrics.`objective`", "orderByAsc": "true",
    }, quote_via=urllib.parse.quote)
    base = f"{stack.mlflow_uri}/#/experiments/{experiment_id}/runs?{view}"

    browser.resize(WIDTH, 2400)
    browser.open(base)
    found = servers.post_json(f"{stack.mlflow_uri}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment_id], "filter": "tags.`gdbench.role` = 'trial'",
        "max_results": 1000})
    run_names = sorted(run["info"]["run_name"] for run in found["runs"])
    assert len(run_names) == three_workers.budget
    text = browser.wait_for_text([three_workers.name, "30 matching runs", *run_names])
    assert not any(line.endswith(f" · #{three_workers.budget}") for line in text.splitlines())

    browser.resize(WIDTH, HEIGHT)
    browser.open(f"{base}&compareRunsMode=CHART")
    browser.wait_for_text(["objective", "loss", "learning_rate", run_names[0]])
    # The assistant panel opens on a fresh profile; the charts need the room.
    browser.evaluate(CLOSE_ASSISTANT)
    time.sleep(2)
    check_screenshot(browser.screenshot(tmp_path / "mlflow_ui.png"))


def test_tensorboard_hparams_dashboard_shows_every_session(
        browser: Chromium, stack: servers.Stack, three_workers: servers.StudyRun,
        tmp_path: Path) -> None:
    browser.open(f"{stack.tensorboard_url}/#hparams")
    # Each row is named as the trial's run, then its study: "adam · η=0.0216 · #7 · <study>".
    sessions = [f"#{number} · {three_workers.name}" for number in range(three_workers.budget)]
    browser.wait_for_text(["learning_rate", "objective", *sessions])
    assert browser.click_text("Parallel Coordinates View") == 1
    browser.wait_for_text(["Color by"])
    time.sleep(2)
    check_screenshot(browser.screenshot(tmp_path / "tensorboard_hparams.png"))


# -- the links `gdbench ui` prints ----------------------------------------------------------------

TWO_STUDIES = """
[[study]]
name = "links_sigmoid"
task = "sigmoid_neuron"
optimizers = ["gd", "momentum", "adam"]
epochs = 30
batch_size = 1                # its two points in an order each seed draws: reruns differ
trials = 9
trials_per_batch = 9
confirm = {seeds = 2}

[[study]]
name = "links_digits"
task = {name = "digits_mlp", subset = 256, validation_size = 64, test_size = 64}
optimizer = "adam"
epochs = 2
batch_size = 64
trials = 3
trials_per_batch = 3
pruner = "none"
tune = ["learning_rate", "beta_1"]
"""
STUDIES = ("links_sigmoid", "links_digits", "links_sigmoid.confirm")


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("links")
    (root / "two.toml").write_text(TWO_STUDIES)
    run = subprocess.run(
        [sys.executable, "-m", "gdbench", "run", "two.toml", "--home", "home", "--quiet"],
        cwd=root, env=servers.worker_environment(), capture_output=True, text=True, timeout=900,
        check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with gdbench_ui(root / "home", root, free_port_base()) as links:
        yield links


def _trial_runs(mlflow: str, study: str) -> list[dict[str, Any]]:
    """The study's trial runs, best first, from the MLflow server."""
    query = urllib.parse.urlencode({"experiment_name": study.removesuffix(".confirm")})
    experiment = servers.get_json(f"{mlflow}/api/2.0/mlflow/experiments/get-by-name?{query}")
    found = servers.post_json(f"{mlflow}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment["experiment"]["experiment_id"]],
        "filter": f"tags.`gdbench.study` = '{study}' AND tags.`gdbench.role` = 'trial'",
        "order_by": ["metrics.`objective` ASC"], "max_results": 1000})
    return found["runs"]


def test_ui_prints_one_mlflow_link_per_study_and_one_for_the_confirm_reruns(
        printed: PrintedLinks) -> None:
    assert sorted(printed.links["MLflow"]) == sorted(STUDIES)
    assert sorted(printed.links["TensorBoard"]) == sorted(STUDIES)
    assert "Logarithmic" in printed.hints["TensorBoard"]
    # Each experiment opens in model training's mode, not GenAI's.
    for study in STUDIES[:2]:
        query = urllib.parse.urlencode({"experiment_name": study})
        experiment = servers.get_json(
            f"{printed.address['MLflow']}/api/2.0/mlflow/experiments/get-by-name?{query}")
        tags = {tag["key"]: tag["value"] for tag in experiment["experiment"]["tags"]}
        assert tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.parametrize("study", STUDIES)
def test_mlflow_link_lists_exactly_the_studys_trials_best_first_with_the_optimizer(
        printed: PrintedLinks, browser: Chromium, study: str) -> None:
    mlflow = printed.address["MLflow"]
    runs = _trial_runs(mlflow, study)
    assert runs
    objective = {run["info"]["run_id"]: float(
        {m["key"]: m["value"] for m in run["data"]["metrics"]}["objective"]) for run in runs}
    optimizer = {run["info"]["run_id"]: {p["key"]: p["value"] for p in run["data"]["params"]}[
        "optimizer"] for run in runs}
    # Tall enough that the table draws every row.
    browser.resize(WIDTH, 600 + 40 * len(runs))
    browser.open(printed.links["MLflow"][study])
    browser.wait_for_text([f"{len(runs)} matching runs", "Sort: objective"])
    rows = browser.wait_for_json(MLFLOW_ROWS, lambda rows: len(rows) >= len(runs)
                                 and all("params.`optimizer`" in row for row in rows))
    # Its trials, and only them: not the study's own run, not the other study's,
    # not the confirmation reruns (nor, for those, the trials).
    assert sorted(row["run"] for row in rows) == sorted(objective)
    shown = [objective[row["run"]] for row in rows]
    assert shown == sorted(shown)
    assert [float(row["metrics.`objective`"]) for row in rows] == shown
    assert [row["params.`optimizer`"] for row in rows] == [optimizer[row["run"]] for row in rows]
    assert "params.`learning_rate`" in rows[0]


def test_tensorboard_link_draws_every_complete_trial_of_the_home_with_every_box_ticked(
        printed: PrintedLinks, browser: Chromium, tmp_path: Path) -> None:
    tensorboard = printed.address["TensorBoard"]
    experiment = servers.post_json(
        tensorboard.split("/#")[0] + "/data/plugin/hparams/experiment",
        {"experimentName": "", "includeMetrics": True})
    metrics = [info.get("displayName") or info["name"]["tag"]
               for info in experiment["metricInfos"]]
    # The objective says what it is in each study.
    assert metrics[0] == "objective (links_digits: val_loss; links_sigmoid: loss; " \
                         "links_sigmoid.confirm: loss)"
    mlflow = printed.address["MLflow"]
    complete = sum(1 for study in STUDIES for run in _trial_runs(mlflow, study)
                   if run["info"]["status"] == "FINISHED"
                   and any(m["key"] == "objective" for m in run["data"]["metrics"]))
    browser.open(tensorboard)
    browser.wait_for_text([metrics[0], *(f"· {study}" for study in STUDIES)], timeout_s=120)
    # The click the printed line names first.
    assert printed.hints["TensorBoard"].startswith("Parallel Coordinates View")
    assert browser.click_text("Parallel Coordinates View") == 1
    state = browser.wait_for_json(DASHBOARD_STATE, lambda s: s["lines"] == complete,
                                  timeout_s=60)
    assert set(metrics) <= set(state["ticked"]), state
    assert {"optimizer", "study"} <= set(state["ticked"])
    check_screenshot(browser.screenshot(tmp_path / "parallel.png"))
