"""A headless Chromium for the tests that read the dashboards as a person sees them.

Chromium is driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``): TensorBoard draws its dashboards inside shadow
DOM, which ``--dump-dom`` leaves out, so the pages are read by scripts that
walk every shadow root.

Set ``GDBENCH_SAVE_SCREENSHOTS=1`` to have :func:`keep_screenshot` also write
its picture into ``docs/images/``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import servers
import system_packages

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).parents[1] / "docs" / "images"
WIDTH, HEIGHT = 1400, 900

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

#: TensorBoard HParams: the labels of the boxes the side panel ticks, and how many
#: lines the parallel-coordinates view draws (paths whose ``d`` holds no NaN).
DASHBOARD_STATE = """(() => {
  const state = {ticked: [], lines: -1};
  const walk = (root) => {
    for (const element of root.querySelectorAll("*")) {
      const tag = element.tagName.toLowerCase();
      if (tag === "paper-checkbox" && element.checked) {
        state.ticked.push(element.textContent.trim());
      }
      if (tag === "tf-hparams-parallel-coords-plot") {
        const paths = (element.shadowRoot || element).querySelectorAll(".foreground path");
        state.lines = Array.from(paths).filter(
          (path) => /^M[^N]*$/.test(path.getAttribute("d") || "")).length;
      }
      if (element.shadowRoot) { walk(element.shadowRoot); }
    }
  };
  walk(document);
  return JSON.stringify(state);
})()"""

#: TensorBoard HParams: unticks the side panel's boxes of the names in a JSON list.
UNTICK = """(() => {
  let unticked = 0;
  const names = %s;
  const walk = (root) => {
    for (const element of root.querySelectorAll("paper-checkbox")) {
      if (element.checked && names.includes(element.textContent.trim())) {
        element.click();
        unticked++;
      }
    }
    for (const element of root.querySelectorAll("*")) {
      if (element.shadowRoot) { walk(element.shadowRoot); }
    }
  };
  walk(document);
  return unticked;
})()"""


#: The MLflow runs table, top to bottom: each row's run id and its cells' text by column
#: id (``params.`optimizer```, ``metrics.`objective```…), the pinned and the scrolled
#: part of a row joined.
MLFLOW_ROWS = """(() => {
  const rows = {};
  for (const row of document.querySelectorAll(".ag-row[row-id][row-index]")) {
    const index = row.getAttribute("row-index");
    const entry = rows[index] || (rows[index] = {run: row.getAttribute("row-id")});
    for (const cell of row.querySelectorAll("[col-id]")) {
      entry[cell.getAttribute("col-id")] = cell.textContent.trim();
    }
  }
  return JSON.stringify(Object.keys(rows).sort((a, b) => a - b).map((key) => rows[key]));
})()"""

#: TensorBoard HParams, parallel-coordinates view: picks "Logarithmic" for the axes named in a
#: JSON list (the clicks ``gdbench ui`` prints); how many were picked.
LOG_SCALE = """(() => {
  const names = %s;
  let picked = 0;
  const walk = (root) => {
    for (const button of root.querySelectorAll("paper-radio-button[id^=logScaleButton_]")) {
      if (names.includes(button.id.slice("logScaleButton_".length)) && !button.disabled) {
        button.click();
        picked++;
      }
    }
    for (const element of root.querySelectorAll("*")) {
      if (element.shadowRoot) { walk(element.shadowRoot); }
    }
  };
  walk(document);
  return picked;
})()"""

#: MLflow: closes the assistant panel a fresh profile opens beside the runs.
CLOSE_ASSISTANT = "document.querySelector('button[aria-label=\"Close\"]')?.click()"


@dataclasses.dataclass
class PrintedLinks:
    """What ``gdbench ui`` printed: each dashboard's address, and the lines under it.

    Attributes:
        address: dashboard title (``MLflow``…) → the address on its line.
        links: dashboard title → (title, address) of each line under it.
        hints: dashboard title → the text of its ``then:`` line ("" when none).
    """

    address: dict[str, str] = dataclasses.field(default_factory=dict)
    links: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    hints: dict[str, str] = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def gdbench_ui(home: Path, cwd: Path, port_base: int) -> Iterator[PrintedLinks]:
    """``gdbench ui --home HOME --port-base P`` as a person starts it, until its last line
    (``Ctrl-C stops them all…``); what it printed, once every dashboard answers.

    Stopped (Ctrl-C, as a person does) on leaving.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "gdbench", "ui", "--home", str(home), "--port-base",
         str(port_base)], cwd=cwd, env=servers.worker_environment(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    printed = PrintedLinks()
    lines = []
    try:
        tool = ""
        for raw in process.stdout:  # type: ignore[union-attr]
            line = raw.decode().rstrip("\n")
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
            if not line.startswith(" "):
                tool, address = line.rsplit(maxsplit=1)
                printed.address[tool], printed.links[tool], printed.hints[tool] = address, {}, ""
            elif line.strip().startswith("then: "):
                printed.hints[tool] = line.strip()[len("then: "):]
            else:
                title, address = line.split()
                printed.links[tool][title] = address
        assert lines and lines[-1].startswith("Ctrl-C"), lines
        ready = {"MLflow": "/health", "TensorBoard": "/data/runs",
                 "optuna-dashboard": "/api/studies"}
        for tool, address in printed.address.items():
            base = address.split("/#")[0].rstrip("/")
            servers.wait_until(tool, lambda url=base + ready[tool]: servers.http_ok(url),
                               None, home / "logs" / f"{tool.lower()}.log")
        yield printed
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                servers.stop_process(process)


def require_chromium() -> None:
    """Skip the test (fail it in CI) when Chromium is not installed."""
    if not CHROMIUM.is_file():
        system_packages.missing("Chromium is not installed (apt-get install chromium)")


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
            # Chromium starts before any thread of the test does.
            preexec_fn=pipes_on_3_and_4, close_fds=False,  # noqa: PLW1509
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

    def wait_for_json(self, expression: str, ready: Callable[[Any], bool],
                      timeout_s: float = 90) -> Any:
        """The JSON that ``expression`` returns, decoded, once ``ready`` holds for it; fail
        with the last one."""
        deadline = time.monotonic() + timeout_s
        while True:
            # Nothing while the page is still loading (the expression throws).
            value = json.loads(self.evaluate(expression) or "null")
            if value is not None and ready(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never got ready in {timeout_s:.0f} s; "
                                     f"it last gave {str(value)[:1000]}")
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


@contextlib.contextmanager
def chromium() -> Iterator[Chromium]:
    """A Chromium on a fresh profile, closed and its profile deleted afterwards."""
    profile = Path(tempfile.mkdtemp(prefix="gdbench-chromium-"))
    browser = Chromium(profile)
    try:
        yield browser
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


def check_screenshot(path: Path) -> Path:
    """Check that the picture has the window's size and shows something (not one flat colour)."""
    import matplotlib.image

    pixels = np.asarray(matplotlib.image.imread(path))
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    assert float(pixels[..., :3].std()) > 0.05
    return path


def keep_screenshot(path: Path) -> None:
    """:func:`check_screenshot`, then copy the picture to docs/images/ when
    ``GDBENCH_SAVE_SCREENSHOTS=1``."""
    check_screenshot(path)
    if os.environ.get("GDBENCH_SAVE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / path.name)
