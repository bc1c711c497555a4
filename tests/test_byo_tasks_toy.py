"""Bringing your own toy task: a loss function of a parameter vector, with or without data.

The Himmelblau example (``studies/himmelblau.py``) runs in a study confirmed over seeds and
lands in every store; a user surface's population equals its single fits; a loss that does
not broadcast, a missing file, a bare function are refused in one line naming the field.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import tensorflow as tf
from board_files import session_hparams
from optuna.trial import TrialState

import gdbench.optimizers
import gdbench.tasks
from gdbench import cli
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.plan.brought_task import task_notes
from gdbench.study.report.leaderboard import leaderboard
from gdbench.tasks.function_task import check_broadcasts
from gdbench.tasks.population import fit_population

STUDIES = Path(__file__).resolve().parents[1] / "studies"
SEEDS = 2

LINEAR = '''
import numpy as np
import tensorflow as tf
import gdbench.tasks


def data(*, seed, rows=40):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, rows)
    return x, 2.0 * x - 0.5 + 0.1 * rng.normal(size=rows)


def squared_error(params, inputs, targets):
    """½ mean (w x + b − y)² over the rows."""
    w, b = params[..., 0:1], params[..., 1:2]
    return 0.5 * tf.reduce_mean(tf.square(w * inputs + b - targets), axis=-1)


Line = gdbench.tasks.toy_task(squared_error, start=(0.0, 0.0), data=data, batch_size=8,
                              parameter_names=("w", "b"))
'''

BAD = '''
import numpy as np
import tensorflow as tf
import gdbench.tasks


def flat(params):
    return tf.reduce_sum(params ** 2)


def pythonic(params):
    return float(np.sum(params)) ** 2 + params[..., 0] * 0.0


def just_a_function(params):
    return tf.reduce_sum(params ** 2, axis=-1)


Flat = gdbench.tasks.toy_task(flat, start=(1.0, 1.0))
Pythonic = gdbench.tasks.toy_task(pythonic, start=(1.0, 1.0))
'''


def himmelblau_folder(folder: Path) -> Path:
    shutil.copy(STUDIES / "himmelblau.py", folder / "himmelblau.py")
    return folder


def write_spec(folder: Path, text: str, name: str = "byo_task") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def himmelblau() -> gdbench.tasks.ToyTask:
    return gdbench.tasks.get(f"{STUDIES / 'himmelblau.py'}:Himmelblau")


# -- the example in a study ----------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    folder = himmelblau_folder(tmp_path_factory.mktemp("spec"))
    spec = load_spec(write_spec(folder, f"""
task = {{name = "himmelblau.py:Himmelblau", start = [0.0, 0.0]}}
epochs = 30
optimizers = ["gd", "adam"]
search = {{learning_rate = {{low = 1e-3, high = 0.02}}}}
trials = 6
trials_per_batch = 3
confirm = {{seeds = {SEEDS}}}
"""))
    assert spec.population and spec.task.toy
    home = folder / "home"
    return home, run_study(spec, home=home, quiet=True)


def test_the_example_spec_reads_and_says_it_trains_in_populations() -> None:
    spec = load_spec(STUDIES / "byo_himmelblau.toml")
    assert spec.task.name == f"{STUDIES / 'himmelblau.py'}:Himmelblau"
    assert spec.population
    assert task_notes(spec) == [f"task himmelblau ({spec.task.name}): its trials train in "
                                "populations"]


def test_a_user_surface_lands_in_optuna_mlflow_tensorboard_and_the_report(study) -> None:
    from mlflow.tracking import MlflowClient

    home, found = study
    assert sum(t.state == TrialState.COMPLETE for t in found.trials) == 6
    assert {t.params["optimizer"] for t in found.trials} == {"gd", "adam"}
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(found.study_name)
    runs = [r for r in client.search_runs([experiment.experiment_id], max_results=1000)
            if r.data.tags.get("gdbench.role") == "trial"
            and r.data.tags.get("gdbench.study") == found.study_name]
    assert len(runs) >= 6 and all("loss" in r.data.metrics for r in runs)
    sessions = [session_hparams(path) for path in (home / "tensorboard" / found.study_name)
                .iterdir() if path.is_dir()]
    assert {hparams["optimizer"] for hparams in sessions} == {"gd", "adam"}
    assert {row["optimizer"] for row in leaderboard(found)} == {"gd", "adam"}
    report = home / "reports" / found.study_name
    assert list(report.glob("*paths.png")), sorted(p.name for p in report.iterdir())
    companion = optuna.load_study(study_name=f"{found.study_name}.confirm",
                                  storage=f"sqlite:///{home / 'optuna.db'}")
    reruns = companion.get_trials()
    assert len(reruns) == 2 * SEEDS and all(t.state == TrialState.COMPLETE for t in reruns)


# -- the population engine and the seed ----------------------------------------------------


def test_a_user_surface_s_population_equals_its_single_fits() -> None:
    task = himmelblau()
    rates = [0.001, 0.005, 0.01]
    together = fit_population(task, "momentum", {"learning_rate": rates, "momentum": 0.8},
                              epochs=40, record_trajectory=True)
    for row, rate in enumerate(rates):
        alone = task.fit(gdbench.optimizers.get("momentum", learning_rate=rate, momentum=0.8),
                         epochs=40)
        np.testing.assert_allclose(together.losses[row], alone.history["loss"], rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(together.trajectories[row], alone.trajectory, rtol=1e-12,
                                   atol=1e-12)


def test_a_loss_with_data_trains_in_populations_and_its_seed_moves_data_and_batches(
        tmp_path: Path) -> None:
    (tmp_path / "line.py").write_text(LINEAR, encoding="utf-8")
    source = gdbench.tasks.source("line.py:Line", base=tmp_path)
    assert source.option_names() == ["seed", "start", "shuffle", "rows"]
    task = source.build(seed=3, rows=30)
    assert task.steps_per_epoch() == 4
    rates = [0.05, 0.2]
    together = fit_population(task, "adam", {"learning_rate": rates}, epochs=5)
    fits = [source.build(seed=3, rows=30).fit(gdbench.optimizers.get("adam", learning_rate=r),
                                               epochs=5) for r in rates]
    for row, alone in enumerate(fits):
        np.testing.assert_allclose(together.losses[row], alone.history["loss"], rtol=1e-12)
    again = source.build(seed=3, rows=30).fit(gdbench.optimizers.get("adam", learning_rate=0.05),
                                               epochs=5)
    other = source.build(seed=4, rows=30).fit(gdbench.optimizers.get("adam", learning_rate=0.05),
                                              epochs=5)
    assert again.history == fits[0].history
    assert other.history["loss"] != fits[0].history["loss"]


def test_the_function_s_keywords_are_the_task_s_options() -> None:
    task = gdbench.tasks.get(f"{STUDIES / 'himmelblau.py'}:Himmelblau", a=0.0, b=0.0)
    # With a = b = 0, f(1, 1) = (1 + 1)² + (1 + 1)² = 8.
    assert float(task.loss(tf.constant([1.0, 1.0], tf.float64))) == 8.0
    assert type(task).option_names() == ["seed", "start", "a", "b"]


# -- bad input: one line naming the field, exit 2, nothing created -------------------------


@pytest.mark.parametrize(("entry", "field", "message"), [
    ('"missing.py:Nothing"', "task", "no such file: "),
    ('"bad.py:just_a_function"', "task", "is a function, not a gdbench task; make a toy task"),
    ('"bad.py:Flat"', "task", "does not broadcast over a leading population axis: parameters of "
                              "shape [3, 2] gave a loss of shape [], not [3]"),
    ('"bad.py:Pythonic"', "task", "cannot be traced as the population engine runs it"),
    ('{name = "bad.py:Flat", strat = [1, 2]}', "task.strat", "did you mean 'start'?"),
    ('{name = "bad.py:Flat", start = [1, 2, 3]}', "task.start", "expected 2 numbers"),
    ('"himmelblau.py:Himmelblau"\nobjective = "accuracy"', "objective.metric",
     "does not log 'accuracy'"),
])
def test_a_bad_toy_task_is_one_line_naming_its_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, field: str,
        message: str) -> None:
    (tmp_path / "bad.py").write_text(BAD, encoding="utf-8")
    himmelblau_folder(tmp_path)
    spec = write_spec(tmp_path, f'task = {entry}\noptimizer = "gd"\n')
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert error.value.field in (field, f"{field}.name")
    assert message in str(error.value)
    home = tmp_path / "home"
    assert cli.main(["run", str(spec), "--home", str(home), "--quiet"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert err.startswith(f"gdbench: error: {spec}: {error.value.field}: ")
    assert not home.exists()


def test_a_loss_that_does_not_broadcast_trains_one_at_a_time_when_the_spec_says_so(
        tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD, encoding="utf-8")
    spec = load_spec(write_spec(tmp_path, 'task = "bad.py:Flat"\noptimizer = "gd"\n'
                                          "population = false\n"))
    assert not spec.population
    with pytest.raises(ValueError, match="does not broadcast"):
        check_broadcasts(spec.task.build())


def test_a_budget_matched_comparison_runs_on_a_user_surface(tmp_path: Path) -> None:
    folder = himmelblau_folder(tmp_path)
    spec = load_spec(write_spec(folder, """
task = "himmelblau.py:Himmelblau"
epochs = 20
optimizers = ["gd", "adam"]
search = {learning_rate = {low = 1e-4, high = 0.02}}
compare = {budgets = [2, 4]}
"""))
    home = folder / "home"
    study = run_study(spec, home=home, quiet=True)
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 8
    budgets = (home / "reports" / study.study_name / "budgets.csv").read_text(encoding="utf-8")
    assert "gd" in budgets and "adam" in budgets


def test_times_to_a_target_on_user_surfaces_give_performance_profiles(tmp_path: Path) -> None:
    from gdbench.study.compare.profiles import write_profiles

    folder = himmelblau_folder(tmp_path)
    studies = []
    for name, start in (("from_origin", "[0.0, 0.0]"), ("from_corner", "[-1.0, 1.0]")):
        spec = load_spec(write_spec(folder, f"""
task = {{name = "himmelblau.py:Himmelblau", start = {start}}}
epochs = 40
optimizers = ["gd", "adam"]
search = {{learning_rate = {{low = 1e-3, high = 0.02}}}}
objective = {{metric = "loss", target = 10.0}}
trials = 4
""", name=name))
        studies.append(run_study(spec, home=folder / "home", quiet=True))
    written = write_profiles(studies, tmp_path / "profiles")
    table = (tmp_path / "profiles" / "profiles.csv").read_text(encoding="utf-8")
    assert {path.name for path in written} >= {"profiles.csv", "profiles.png"}
    assert "gd" in table and "adam" in table and "from_corner" in table
