"""The study's runs and sessions, as a person sees them: the MLflow UI and TensorBoard in Chromium.

A headless Chromium (``browser.py``) opens the UIs of the servers that
``test_distributed.py`` uses (the same session-wide stack and three-worker
study), waits until the page shows every trial, and takes a screenshot. The
pictures of the README and ``docs/running.md`` are those of the demo's pages,
which ``test_dashboards.py`` takes.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import servers
from browser import (
    HEIGHT,
    WIDTH,
    Chromium,
    check_screenshot,
    chromium,
    require_chromium,
)

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
    browser.evaluate("document.querySelector('button[aria-label=\"Close\"]')?.click()")
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
