"""The study's MLflow parent run says what happened to the study."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_study_runner import run_study_parent_status, write

from gdbench.study import Interrupted, load_spec, run_study
from gdbench.study.compare import confirm

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

SPEC = """
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 5
trials = 2
{extra}
"""


def test_an_interrupt_after_the_trials_leaves_the_study_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_confirmation(*args: object, **kwargs: object) -> None:
        raise Interrupted("SIGINT")

    monkeypatch.setattr(confirm, "confirm_study", interrupted_confirmation)
    spec = load_spec(write(tmp_path, SPEC.format(extra="confirm = {seeds = 2}"), "confirmed"))
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, home=tmp_path / "home", quiet=True)
    # The trials are all done: the interrupted confirmation is not the study's end.
    assert run_study_parent_status(tmp_path / "home", "confirmed") == "FINISHED"


def test_an_interrupt_during_the_trials_leaves_the_study_killed(tmp_path: Path) -> None:
    def interrupt(study: object, trial: object) -> None:
        raise Interrupted("SIGINT")

    spec = load_spec(write(tmp_path, SPEC.format(extra=""), "stopped"))
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, home=tmp_path / "home", quiet=True, callbacks=[interrupt])
    assert run_study_parent_status(tmp_path / "home", "stopped") == "KILLED"
    run_study(spec, home=tmp_path / "home", quiet=True)
    assert run_study_parent_status(tmp_path / "home", "stopped") == "FINISHED"
