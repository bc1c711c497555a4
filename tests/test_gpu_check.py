"""``benchmarks/gpu_check.py --smoke`` runs on a CPU and writes its whole table.

The GPU check runs only where a GPU is lent; this keeps it working in between.
Each importable backend of the script (JAX, and PyTorch where installed) runs,
without TensorFlow, as it would on the GPU machine.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import gdbench.optimizers

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]


@pytest.mark.slow
@pytest.mark.skipif(not BACKENDS, reason="neither jax nor torch is installed")
def test_smoke_run_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(out),
         "--backends", *BACKENDS],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line.split(" | ") for line in out.read_text().splitlines()[2:]]
    for backend in BACKENDS:
        mine = [row for row in rows if row[0] == f"| {backend}"]
        checks = [row[1] for row in mine]
        assert checks.count("device") == 1
        references = {row[2].split(" ")[0]: row[5] for row in mine if row[1] == "reference, float32"}
        assert references == {name: "pass |" for name in gdbench.optimizers.names()}
        for policy in ("float32", "mixed_bfloat16"):
            subjects = [row[2] for row in mine if row[1] == f"step time, {policy}"]
            assert {subject.split(", ")[1].split(" ")[0] for subject in subjects} == {"MLP", "CNN"}
        assert checks.count("copy bandwidth") == 1 and checks.count("update bandwidth") == 2
