"""Convert DeepOBS's published baseline runs into gdbench's compact baseline files.

    python scripts/deepobs_baselines.py PATH/TO/DeepOBS [--out gdbench/baselines/deepobs]

reads ``PATH/TO/DeepOBS/baselines/<problem>/<optimizer>/<setting>/random_seed__<seed>__<time>.json``
(a checkout of https://github.com/fsschneider/DeepOBS) and writes one
``<problem>.json`` per problem gdbench shares with DeepOBS
(:data:`gdbench.baselines.DEEPOBS_TASKS`) that the checkout holds.

For each baseline optimizer the chosen setting is the one DeepOBS reran over
several seeds: DeepOBS tuned the learning rate on a grid with seed 42 and
reran the best setting (by the final test accuracy; the final test loss for a
problem without accuracy) with ten seeds. Where no setting was rerun, the best
seed-42 setting by that rule is taken, with its one seed. Each metric of
:data:`gdbench.baselines.METRICS` is averaged over the setting's seeds, epoch
by epoch (mean and standard deviation, ddof = 0). Nothing but these numbers is
taken from the checkout.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gdbench.baselines import (
    DEEPOBS_OPTIMIZERS,
    DEEPOBS_TASKS,
    FORMAT,
    METRICS,
    data_directory,
)

REPOSITORY = "https://github.com/fsschneider/DeepOBS"
PATH_PATTERN = "baselines/{problem}/{optimizer}/{setting}/random_seed__{seed}__{time}.json"
LICENSE = ("MIT License, Copyright (c) 2019 Frank Schneider, Lukas Balles & Philipp Hennig "
           "(the repository's LICENSE)")
CITATION = ("Frank Schneider, Lukas Balles and Philipp Hennig. DeepOBS: A Deep Learning "
            "Optimizer Benchmark Suite. International Conference on Learning Representations "
            "(ICLR), 2019. https://openreview.net/forum?id=rJg6ssC5Y7")

#: DeepOBS's setting keys → gdbench's optimizer keywords (the rest are dropped).
_KEYWORDS = {"lr": "learning_rate", "momentum": "momentum", "beta1": "beta_1",
             "beta2": "beta_2", "epsilon": "epsilon"}


def parse_setting(name: str) -> dict[str, Any]:
    """A setting folder's name (``num_epochs__100__batch_size__128__lr__1.e-02``) → its values."""
    parts = name.split("__")
    if len(parts) % 2:
        raise ValueError(f"setting: cannot read {name!r}")
    values: dict[str, Any] = {}
    for key, text in zip(parts[::2], parts[1::2]):
        if text in ("True", "False"):
            values[key] = text == "True"
        elif re.fullmatch(r"-?\d+", text):
            values[key] = int(text)
        else:
            try:
                values[key] = float(text)
            except ValueError:
                values[key] = text
    return values


def read_runs(setting_dir: Path) -> list[dict[str, Any]]:
    """Every seed's run of one setting, in seed order."""
    runs = [json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(setting_dir.glob("random_seed__*.json"))]
    return sorted(runs, key=lambda run: run["random_seed"])


def final_score(run: dict[str, Any]) -> float:
    """What DeepOBS ranks settings by, larger is better: the final test accuracy, else −loss."""
    if run.get("test_accuracies"):
        return float(run["test_accuracies"][-1])
    return -float(run["test_losses"][-1])


def choose_setting(optimizer_dir: Path) -> tuple[Path, list[dict[str, Any]], str]:
    """The setting DeepOBS reran over seeds (else the best seed-42 one), its runs, and why."""
    settings = {path: read_runs(path) for path in sorted(optimizer_dir.iterdir()) if path.is_dir()}
    settings = {path: runs for path, runs in settings.items() if runs}
    if not settings:
        raise ValueError(f"{optimizer_dir}: no runs")

    def seed_42_score(runs: list[dict[str, Any]]) -> float:
        first = next((run for run in runs if run["random_seed"] == 42), runs[0])
        return final_score(first) if np.isfinite(final_score(first)) else -np.inf

    most = max(len(runs) for runs in settings.values())
    candidates = {path: runs for path, runs in settings.items() if len(runs) == most}
    chosen = max(candidates, key=lambda path: seed_42_score(candidates[path]))
    why = (f"the setting DeepOBS reran over {most} seeds" if most > 1 else
           "the best seed-42 setting by the final test accuracy (test loss without accuracy)")
    return chosen, settings[chosen], why


def curve(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Each metric's per-epoch mean and standard deviation over the runs."""
    metrics = {}
    for deepobs_key, key in METRICS.items():
        series = [run.get(deepobs_key) for run in runs]
        if not all(series):
            continue
        values = np.asarray(series, dtype=float)
        # Six significant digits: far below the spread over seeds, and a third of the size.
        metrics[key] = {"mean": [float(f"{v:.6g}") for v in values.mean(axis=0)],
                        "std": [float(f"{v:.6g}") for v in values.std(axis=0)]}
    return metrics


def commit_of(checkout: Path) -> str:
    """The checkout's commit, or ``"unknown"`` outside git."""
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def convert(checkout: Path, out: Path, commit: str | None = None) -> list[Path]:
    """Write ``<problem>.json`` into ``out`` for every shared problem ``checkout`` holds."""
    commit = commit or commit_of(checkout)
    written = []
    for problem, task in DEEPOBS_TASKS.items():
        problem_dir = checkout / "baselines" / problem
        if not problem_dir.is_dir():
            continue
        optimizers: dict[str, Any] = {}
        sizes: set[tuple[int, int]] = set()
        for deepobs_name, name in DEEPOBS_OPTIMIZERS.items():
            if not (problem_dir / deepobs_name).is_dir():
                continue
            setting_dir, runs, why = choose_setting(problem_dir / deepobs_name)
            setting = parse_setting(setting_dir.name)
            if setting.get("use_nesterov"):
                raise ValueError(f"{setting_dir}: a Nesterov setting is no baseline of {name}")
            sizes.add((int(setting["batch_size"]), int(setting["num_epochs"])))
            optimizers[name] = {
                "deepobs_optimizer": deepobs_name,
                "setting": setting_dir.name,
                "selected": why,
                "hyperparameters": {_KEYWORDS[key]: value for key, value in setting.items()
                                    if key in _KEYWORDS},
                "seeds": [int(run["random_seed"]) for run in runs],
                "metrics": curve(runs),
            }
        if not optimizers:
            continue
        if len(sizes) != 1:
            raise ValueError(f"{problem}: the optimizers ran different sizes {sorted(sizes)}")
        ((batch_size, num_epochs),) = sizes
        data = {
            "format": FORMAT, "problem": problem, "task": task,
            "batch_size": batch_size, "num_epochs": num_epochs,
            "source": {"repository": REPOSITORY, "commit": commit, "path_pattern": PATH_PATTERN,
                       "license": LICENSE, "citation": CITATION},
            "optimizers": optimizers,
        }
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{problem}.json"
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of fsschneider/DeepOBS")
    parser.add_argument("--out", type=Path, default=data_directory(),
                        help="where to write (default: the package's baseline folder)")
    parser.add_argument("--commit", help="the checkout's commit (default: git rev-parse HEAD)")
    arguments = parser.parse_args(argv)
    if not (arguments.checkout / "baselines").is_dir():
        parser.error(f"checkout: {arguments.checkout / 'baselines'} is not a folder")
    for path in convert(arguments.checkout, arguments.out, arguments.commit):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
