"""A study grows: its spec rerun with one more optimizer adds that optimizer's branch.

The new branch gets its own trials (the balance counts them, the budget is the
spec's), Optuna takes the grown ``optimizer`` parameter, and the finished trials
stay as they were; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import servers
import system_packages
from optuna.trial import TrialState

from gdbench.study import StudyError, load_spec, run_study
from gdbench.study.trials import storage


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL server of this module's own, on loopback."""
    reason = servers.missing_prerequisite()
    if reason is not None:
        system_packages.missing(reason)
    stack = servers.Stack(root=Path(tempfile.mkdtemp(prefix="gdbench-growth-")))
    os.chmod(stack.root, 0o755)
    request.addfinalizer(stack.stop)
    servers.start_postgres(stack, servers.postgres_bin())
    return stack.postgres_url


def spec_of(folder: Path, optimizers: str, trials: int, extra: str = ""):
    path = folder / "grow.toml"
    path.write_text(f"""
task = "linear_regression"
batch_size = 10
epochs = 3
trials = {trials}
optimizers = {optimizers}
tracking = {{mlflow = false, tensorboard = false}}
{extra}
""", encoding="utf-8")
    return load_spec(path)


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
@pytest.mark.parametrize("population", [True, False])
def test_a_study_grows_by_one_optimizer(tmp_path: Path, request: pytest.FixtureRequest,
                                        where: str, population: bool) -> None:
    storage = None
    if where == "postgresql":
        url = request.getfixturevalue("postgres_url")
        storage = url
    extra = f"population = {str(population).lower()}"
    name = f"grow_{where}_{population}".lower()
    extra += f'\nname = "{name}"'
    first = run_study(spec_of(tmp_path, '["gd", "adam"]', 4, extra), home=tmp_path / "home",
                      quiet=True, storage=storage)
    finished = {t.number: (t.state, t.params, t.value, t.datetime_complete) for t in first.trials}
    grown = run_study(spec_of(tmp_path, '["gd", "adam", "momentum"]', 9, extra),
                      home=tmp_path / "home", quiet=True, storage=storage)
    trials = grown.trials
    assert len(trials) == 9
    for trial in trials[:4]:
        assert (trial.state, trial.params, trial.value, trial.datetime_complete) == \
            finished[trial.number]
    per_optimizer = {label: [t for t in trials if t.params["optimizer"] == label]
                     for label in ("gd", "adam", "momentum")}
    assert {label: len(found) for label, found in per_optimizer.items()} == \
        {"gd": 3, "adam": 3, "momentum": 3}
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               for t in per_optimizer["momentum"])
    assert any(t.state == TrialState.COMPLETE for t in per_optimizer["momentum"])
    assert "momentum" in per_optimizer["momentum"][0].params and \
        "learning_rate" in per_optimizer["momentum"][0].params
    # The grown spec is the study's now: rerunning it adds nothing, the first one is refused.
    again = run_study(spec_of(tmp_path, '["gd", "adam", "momentum"]', 9, extra),
                      home=tmp_path / "home", quiet=True, storage=storage)
    assert len(again.trials) == 9
    with pytest.raises(StudyError, match=r"differs in optimizers"):
        run_study(spec_of(tmp_path, '["gd", "adam"]', 9, extra), home=tmp_path / "home",
                  quiet=True, storage=storage)


def test_an_unbalanced_study_does_not_grow(tmp_path: Path) -> None:
    run_study(spec_of(tmp_path, '["gd", "adam"]', 2, "balance = false"), home=tmp_path / "home",
              quiet=True)
    with pytest.raises(StudyError, match=r"optimizers: study 'grow' grows by momentum only when "
                                         r"its trials take the optimizers in turn"):
        run_study(spec_of(tmp_path, '["gd", "adam", "momentum"]', 4, "balance = false"),
                  home=tmp_path / "home", quiet=True)


def test_another_spec_is_still_refused(tmp_path: Path) -> None:
    run_study(spec_of(tmp_path, '["gd", "adam"]', 2), home=tmp_path / "home", quiet=True)
    with pytest.raises(StudyError, match=r"differs in optimizers\)"):
        run_study(spec_of(tmp_path, '["gd", "momentum"]', 4), home=tmp_path / "home", quiet=True)


@pytest.mark.parametrize("population", [True, False])
def test_a_trial_queued_again_before_the_study_grew_runs_after(tmp_path: Path,
                                                               population: bool) -> None:
    """A retry holds ``optimizer`` with the choices its study had when it was queued."""
    extra = f"population = {str(population).lower()}"
    first = run_study(spec_of(tmp_path, '["gd", "adam"]', 4, extra), home=tmp_path / "home",
                      quiet=True)
    # As an interrupt leaves it: trial 1 failed, a copy of it waiting.
    storage.queue_again(first, first.trials[1])
    grown = run_study(spec_of(tmp_path, '["gd", "adam", "momentum"]', 7, extra),
                      home=tmp_path / "home", quiet=True)
    retry = grown.trials[4]
    assert retry.system_attrs["failed_trial"] == 1
    assert retry.state == TrialState.COMPLETE
    assert retry.params["optimizer"] == first.trials[1].params["optimizer"]
    assert retry.distributions["optimizer"].choices == ("gd", "adam")
    assert [t.params["optimizer"] for t in grown.trials[5:]].count("momentum") >= 2
