"""What a study's start-up pays: no MLflow for an untracked study, no collection of the imports."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gdbench.cli._studies import imports_frozen
from gdbench.study import load_spec, run_study

UNTRACKED_SPEC = """
name = "small"
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 5
trials = 4
[tracking]
mlflow = false
tensorboard = false
"""


@pytest.fixture
def unfrozen() -> object:
    """Each test starts and ends with nothing frozen and the collector on."""
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize("enabled", [True, False], ids=["collector_on", "collector_off"])
def test_imports_frozen_collects_nothing_while_importing_then_freezes_what_it_left(
    enabled: bool,
) -> None:
    (gc.enable if enabled else gc.disable)()
    with imports_frozen():
        assert not gc.isenabled()
        kept = [[object()] for _ in range(1000)]
    assert gc.get_freeze_count() >= len(kept)
    assert gc.isenabled() == enabled


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize("frozen_before", [False, True], ids=["nothing_frozen", "caller_froze"])
def test_a_study_unfreezes_after_its_trials_only_what_it_froze_itself(
    tmp_path: Path, frozen_before: bool
) -> None:
    path = tmp_path / "small.toml"
    path.write_text(UNTRACKED_SPEC, encoding="utf-8")
    spec = load_spec(path)
    if frozen_before:
        gc.freeze()
    before = gc.get_freeze_count()
    study = run_study(spec, home=tmp_path / "home", quiet=True)
    assert len(study.trials) == 4
    if frozen_before:
        # Still frozen: an unfreeze would leave none. (Frozen objects freed by their
        # reference counts meanwhile make the count a little smaller.)
        assert gc.get_freeze_count() > before // 2 > 0
    else:
        assert gc.get_freeze_count() == 0


@pytest.mark.slow
def test_an_untracked_run_imports_no_mlflow_and_keeps_its_imports_frozen(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(UNTRACKED_SPEC, encoding="utf-8")
    probe = (
        "import gc, json, sys\nfrom gdbench import cli\n"
        f"status = cli.main(['run', {str(path)!r}, '--home', {str(tmp_path / 'home')!r}, "
        "'--quiet'])\n"
        "print(json.dumps({'status': status, 'mlflow': 'mlflow' in sys.modules, "
        "'keras': 'keras' in sys.modules, 'frozen': gc.get_freeze_count(), "
        "'enabled': gc.isenabled()}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=600)
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["status"] == 0
    assert seen["keras"]  # the study did train, and its imports were frozen
    assert not seen["mlflow"]
    assert seen["frozen"] > 100_000
    assert seen["enabled"]


@pytest.mark.usefixtures("unfrozen")
def test_a_study_keeps_what_was_alive_at_its_start_frozen_through_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gdbench.study.report import leaderboard

    path = tmp_path / "small.toml"
    path.write_text(UNTRACKED_SPEC, encoding="utf-8")
    spec = load_spec(path)
    alive = [[object()] for _ in range(1000)]
    frozen_in_report = []
    write = leaderboard.write_study_report

    def counted(*args, **kwargs):
        frozen_in_report.append(gc.get_freeze_count())
        return write(*args, **kwargs)

    monkeypatch.setattr(leaderboard, "write_study_report", counted)
    run_study(spec, home=tmp_path / "home", quiet=True)
    # The report's collections leave out what the study found alive: it is frozen.
    assert frozen_in_report and frozen_in_report[0] >= len(alive)
    assert gc.get_freeze_count() == 0
