"""``gdbench check-task``: a task of the user's built, fitted briefly, its seed and objectives
shown; a task whose seed does not repeat its curves fails, and the command exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdbench import cli
from gdbench.tasks.task_checks import CHECKS, FAIL, PASS, SKIP, check_task

STUDIES = Path(__file__).resolve().parents[1] / "studies"

UNSEEDED = '''
import numpy as np
import tensorflow as tf
import gdbench.tasks


def data(*, seed):
    rng = np.random.default_rng()  # ignores the task's seed: every build draws other data
    x = rng.uniform(-1.0, 1.0, 20)
    return x, 3.0 * x


def squared_error(params, inputs, targets):
    return tf.reduce_mean(tf.square(params[..., 0:1] * inputs - targets), axis=-1)


Unseeded = gdbench.tasks.toy_task(squared_error, start=(0.0,), data=data)
'''


def statuses(results) -> dict[str, tuple[str, str]]:
    return {result.check: (result.status, result.detail) for result in results}


def test_a_user_surface_passes_and_its_seed_moves_nothing() -> None:
    found = statuses(check_task(f"{STUDIES / 'himmelblau.py'}:Himmelblau"))
    assert list(found) == list(CHECKS)
    assert all(status == PASS for status, _ in found.values()), found
    assert found["seed"][1].endswith("the seed moves nothing (every seed gives these)")
    assert found["objectives"][1] == "loss"
    assert found["population"][1].startswith("trains in populations, equal to its single fits")


def test_the_breast_cancer_spec_passes_its_seed_moving_its_curves(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-task", str(STUDIES / "byo_breast_cancer.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("breast_cancer (") and lines[0].endswith("breast_cancer.py"
                                                                          ":BreastCancer)")
    assert [line.split()[0] for line in lines[1:]] == ["PASS"] * len(CHECKS)
    assert "another seed other ones" in lines[3]
    assert lines[4] == "PASS objectives: loss, accuracy, val_loss, val_accuracy"


def test_a_task_whose_seed_does_not_repeat_its_curves_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "unseeded.py").write_text(UNSEEDED, encoding="utf-8")
    found = statuses(check_task("unseeded.py:Unseeded", base=tmp_path))
    assert found["seed"][0] == FAIL and "the same seed gave other curves" in found["seed"][1]
    assert cli.main(["check-task", str(tmp_path / "unseeded.py") + ":Unseeded"]) == 1
    assert "FAIL seed: the same seed gave other curves" in capsys.readouterr().out


def test_a_task_that_cannot_be_built_fails_its_build_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "import gdbench.tasks\nBroken = gdbench.tasks.keras_task(lambda: 1, "
        "{'train': ([[0.0]] * 4, [0] * 4)}, name='broken')\n", encoding="utf-8")
    found = statuses(check_task("broken.py:Broken", base=tmp_path))
    assert found["build"] == (FAIL, "raised ValueError: build_model: <lambda> returned int, "
                                    "not a keras.Model")
    assert all(found[name][0] == SKIP for name in CHECKS[1:])


def test_a_missing_task_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-task", "no_such_file.py:Task"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task: no such file: " in err
