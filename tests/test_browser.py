"""The study's runs and sessions, as a person sees them: the MLflow UI and TensorBoard in Chromium.

A headless Chromium opens the UIs of the servers that ``test_distributed.py``
uses (the same session-wide stack and three-worker study), waits until the
page shows every trial, and takes a screenshot. The pages are read through the
DevTools protocol over a pipe (``--remote-debugging-pipe``): TensorBoard draws
its dashboards inside shadow DOM, which ``--dump-dom`` leaves out.

Set ``GDBENCH_SAVE_SCREENSHOTS=1`` to also write the screenshots into
``docs/images/`` (``mlflow_ui.png``, ``tensorboard_hparams.png``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import servers
import system_packages

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).parents[1] / "docs" / "images"
WIDTH, HEIGHT = 1400, 900

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _chromium() -> None:
    if not CHROMIUM.is_file():
        system_packages.missing("Chromium is not installed (apt-get install chromium)")

#: The text of the page, shadow roots included (``innerText`` of the document,
#: ``textContent`` of every shadow root).
DEEP_TEXT = """(() => {
  const parts = [document.body.innerText];
  const walk = (root) => {
    for (const element of root.querySelectorAll("*")) {
      if (element.shadowRoot) { parts.push(element.shadowRoot.textContent); walk(element.shadowRoot); }
    }
  };
  walk(document);
  return parts.join("\\n");
})()"""

#: Clicks every element, shadow roots included, whose own text is ``%s`` (any case).
CLICK_TEXT = """(() => {
  const found = [];
  const walk = (root) => {
    for (const element of root.querySelectorAll("*")) {
      if (element.shadowRoot) { walk(element.shadowRoot); }
      if (element.children.length === 0 && element.textContent.trim().toLowerCase() === %s) {
        found.push(element);
      }
    }
  };
  walk(document);
  found.forEach((element) => element.click());
  return found.length;
})()"""


class Chromium:
    """A headless Chromium driven through the DevTools protocol on a pipe (fds 3 and 4).

    Args:
        profile: the user-data folder (fresh, deleted by the caller).
    """

    def __init__(self, profile: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Above 4, so that moving them to 3 and 4 in the child cannot clobber them.
        child_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)

        def pipes_on_3_and_4() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.process = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=pipes_on_3_and_4, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for fd in (to_browser_read, from_browser_write, child_in, child_out):
            os.close(fd)
        self._buffer = b""
        self._last_id = 0
        self._session = ""
        pages = [t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        self._session = self.send("Target.attachToTarget",
                                  {"targetId": pages[0]["targetId"], "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.resize(WIDTH, HEIGHT)

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (status {self.process.poll()})")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def resize(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def wait_for_text(self, expected: list[str], timeout_s: float = 90) -> str:
        """The page's text once it holds every string of ``expected``; fail naming those missing."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.evaluate(DEEP_TEXT) or ""
            missing = [item for item in expected if item not in text]
            if not missing:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {missing[:5]} "
                                     f"({len(missing)} missing); it shows: {text[:500]!r}")
            time.sleep(0.5)

    def click_text(self, label: str) -> int:
        return int(self.evaluate(CLICK_TEXT % json.dumps(label.lower())))

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        servers.stop_process(self.process, grace_s=5)
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> servers.Stack:
    return servers.shared_stack(request)


@pytest.fixture(scope="module")
def three_workers(stack: servers.Stack) -> servers.StudyRun:
    return servers.cached("three_workers", lambda: servers.three_worker_study(stack))


@pytest.fixture()
def browser() -> Any:
    profile = Path(tempfile.mkdtemp(prefix="gdbench-chromium-"))
    chromium = Chromium(profile)
    try:
        yield chromium
    finally:
        chromium.close()
        shutil.rmtree(profile, ignore_errors=True)


def keep_screenshot(path: Path) -> None:
    """Check that the picture shows something (not one flat colour); copy it to docs/images/ on demand."""
    import matplotlib.image

    pixels = np.asarray(matplotlib.image.imread(path))
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    assert float(pixels[..., :3].std()) > 0.05
    if os.environ.get("GDBENCH_SAVE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / path.name)


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
    keep_screenshot(browser.screenshot(tmp_path / "mlflow_ui.png"))


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
    keep_screenshot(browser.screenshot(tmp_path / "tensorboard_hparams.png"))
