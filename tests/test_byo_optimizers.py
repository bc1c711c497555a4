"""Bringing your own optimizer: a Keras class by import path, a file's class, an update rule.

They run in a study beside gdbench's own (Optuna, MLflow, TensorBoard, the report, the
confirmation over seeds); a rule trains in both population engines exactly as the
built-in it re-implements; a bad entry is one line naming its field.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from board_files import session_hparams
from optuna.trial import TrialState

import gdbench.optimizers
import gdbench.tasks
from gdbench import cli
from gdbench.study.spec import domains
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.plan.brought import optimizer_notes
from gdbench.study.report.leaderboard import leaderboard
from gdbench.study.spec import spaces
from gdbench.tasks.image_population import fit_image_population
from gdbench.tasks.population import fit_population

USER_FILE = Path(__file__).resolve().parent / "byo" / "my_optimizers.py"
SEEDS = 2
LABELS = {"adam", "lion", "signsgd", "heavyball"}


def user_folder(tmp_path: Path) -> Path:
    """A spec's folder holding the user's optimizers file."""
    shutil.copy(USER_FILE, tmp_path / "my_optimizers.py")
    return tmp_path


def write_spec(folder: Path, text: str, name: str = "byo") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- a study of four sources ---------------------------------------------------------------


@pytest.fixture(scope="module")
def byo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    """Adam, Keras's Lion, a user file's Keras class and a user rule, confirmed over seeds."""
    folder = user_folder(tmp_path_factory.mktemp("spec"))
    home = folder / "home"
    spec = load_spec(write_spec(folder, f"""
task = "linear_regression"
batch_size = 10
epochs = 5
trials = 8
optimizers = ["adam", "keras.optimizers.Lion", "my_optimizers.py:SignSGD",
              "my_optimizers.py:HeavyBall"]
confirm = {{seeds = {SEEDS}}}
"""))
    return home, run_study(spec, home=home, quiet=True)


def test_every_source_runs_its_own_trials_in_optuna(byo) -> None:
    _, study = byo
    by_label: dict[str, list] = {}
    for trial in study.trials:
        by_label.setdefault(trial.params["optimizer"], []).append(trial)
    assert set(by_label) == LABELS
    assert all(len(trials) == 2 for trials in by_label.values())  # balanced
    assert all(any(t.state == TrialState.COMPLETE for t in trials)
               for trials in by_label.values())
    # Lion's η searched around its default (1e-3), two decades each side.
    lion_rates = [t.params["learning_rate"] for t in by_label["lion"]]
    assert all(1e-5 <= rate <= 1e-1 for rate in lion_rates)
    assert "momentum" in by_label["heavyball"][0].params


def test_every_source_is_a_named_mlflow_run_and_a_hparams_session(byo) -> None:
    from mlflow.tracking import MlflowClient

    home, study = byo
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study.study_name)
    runs = [r for r in client.search_runs([experiment.experiment_id], max_results=1000)
            if r.data.tags.get("gdbench.role") == "trial"
            and r.data.tags.get("gdbench.study") == study.study_name]
    assert {r.data.params["optimizer"] for r in runs} == LABELS
    for run in runs:
        assert run.data.params["optimizer"] in run.info.run_name
    sessions = [session_hparams(path) for path in (home / "tensorboard" / study.study_name)
                .iterdir() if path.is_dir()]
    assert {hparams["optimizer"] for hparams in sessions} == LABELS


def test_the_report_and_the_confirmation_hold_every_source(byo) -> None:
    home, study = byo
    rows = leaderboard(study)
    assert {row["optimizer"] for row in rows} == LABELS
    companion = optuna.load_study(study_name=f"{study.study_name}.confirm",
                                  storage=f"sqlite:///{home / 'optuna.db'}")
    reruns = companion.get_trials()
    assert {t.user_attrs["optimizer"] for t in reruns} == LABELS
    assert len(reruns) == len(LABELS) * SEEDS
    assert all(t.state == TrialState.COMPLETE for t in reruns)
    report = (home / "reports" / study.study_name)
    assert report.is_dir()
    text = "".join(path.read_text(encoding="utf-8", errors="ignore")
                   for path in report.glob("*.csv"))
    assert all(label in text for label in LABELS)


# -- default spaces from a signature --------------------------------------------------------


def test_a_signature_gives_log_eta_the_shared_ladders_and_keeps_the_rest() -> None:
    space, kept = spaces.signature_space({
        "learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7,
        "weight_decay": None, "epsilon_1": 1e-30, "clip_threshold": 1.0, "relative_step": True,
        "beta_3": 0.5, "rho": 1.5,
    })
    assert space["learning_rate"] == domains.LogUniform(1e-5, 1e-1)
    assert space["beta_1"] is spaces.KEYWORD_SPACES["beta_1"]
    assert space["beta_2"] is spaces.KEYWORD_SPACES["beta_2"]
    assert space["epsilon"] is spaces.KEYWORD_SPACES["epsilon"]
    assert space["epsilon_1"] == domains.LogUniform(1e-32, 1e-28)
    assert isinstance(space["beta_3"], domains.OneMinusLogUniform)
    assert kept == ["weight_decay", "clip_threshold", "relative_step", "rho"]


def test_the_run_says_what_each_brought_optimizer_searches(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    spec = load_spec(write_spec(folder, """
task = "sigmoid_neuron"
optimizers = ["adam", "keras.optimizers.Lion", {name = "my_optimizers.py:HeavyBall", momentum = 0.5}]
"""))
    lines = optimizer_notes(spec)
    assert lines == [
        "optimizer lion (keras.optimizers.Lion): searches learning_rate, beta_2; keeps at its "
        "defaults beta_1 = 0.9 (it refuses beta_1 = 0.0 of the default space), "
        "weight_decay = None",
        "optimizer lion is a Keras class, not an update rule: its trials train one at a time, "
        "not in populations",
        f"optimizer heavyball ({folder / 'my_optimizers.py'}:HeavyBall): searches "
        "learning_rate; fixes momentum = 0.5",
    ]


# -- a rule is the built-in it re-implements, in every engine -------------------------------


def heavy_ball() -> type[gdbench.optimizers.RuleOptimizer]:
    return gdbench.optimizers.source(f"{USER_FILE}:HeavyBall").optimizer_class


def test_a_rule_is_gdbench_momentum_in_task_fit() -> None:
    task = gdbench.tasks.get("sigmoid_neuron")
    ours = task.fit(heavy_ball()(learning_rate=0.5, momentum=0.9), epochs=30)
    theirs = task.fit(gdbench.optimizers.get("momentum", learning_rate=0.5, momentum=0.9),
                      epochs=30)
    np.testing.assert_allclose(ours.history["loss"], theirs.history["loss"], rtol=1e-12, atol=0)
    assert ours.trajectory is not None
    np.testing.assert_allclose(ours.trajectory, theirs.trajectory, rtol=1e-12, atol=0)


def test_a_rule_is_gdbench_momentum_in_the_toy_population() -> None:
    task = gdbench.tasks.get("sigmoid_neuron")
    values = {"learning_rate": [0.05, 0.5, 2.0], "momentum": [0.0, 0.5, 0.9]}
    ours = fit_population(task, heavy_ball(), values, epochs=40)
    theirs = fit_population(task, "momentum", values, epochs=40)
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-12, atol=0)
    single = task.fit(heavy_ball()(learning_rate=0.5, momentum=0.5), epochs=40)
    np.testing.assert_allclose(ours.losses[1], single.history["loss"], rtol=1e-12, atol=0)


def test_a_rule_is_gdbench_momentum_in_the_image_population() -> None:
    task = gdbench.tasks.get("digits_mlp", subset=150)
    values = {"learning_rate": [0.01, 0.1], "momentum": [0.5, 0.9]}
    ours = fit_image_population(task, heavy_ball(), values, epochs=2, batch_size=32)
    theirs = fit_image_population(task, "momentum", values, epochs=2, batch_size=32)
    assert set(ours.history) == set(theirs.history)
    for key in ours.history:
        np.testing.assert_allclose(ours.history[key], theirs.history[key], rtol=1e-12, atol=0)
    for mine, other in zip(ours.final_weights, theirs.final_weights):
        np.testing.assert_allclose(mine, other, rtol=1e-12, atol=0)


def test_the_population_engines_refuse_a_class_that_is_no_rule() -> None:
    task = gdbench.tasks.get("sigmoid_neuron")
    with pytest.raises(ValueError, match="Lion is not an update rule"):
        fit_population(task, "keras.optimizers.Lion", {"learning_rate": [0.1, 0.2]}, epochs=1)


# -- bad input: one line naming the field, exit 2, nothing created -------------------------


BAD_RULES = '''
import numpy as np
import gdbench.optimizers


def python_on_a_tensor(param, grad, slots, *, step, learning_rate):
    if float(np.sum(grad)) > 0:
        return param - learning_rate * grad, slots
    return param, slots


Untraceable = gdbench.optimizers.rule_optimizer(python_on_a_tensor)


class Raises(gdbench.optimizers.GD):
    def __init__(self, learning_rate=0.01, name="raises", **kwargs):
        raise RuntimeError("this constructor always fails")
'''

WRONG_SIGNATURE = '''
import gdbench.optimizers


def two_arguments(param, grad, *, step, learning_rate):
    return param - learning_rate * grad, ()


Wrong = gdbench.optimizers.rule_optimizer(two_arguments)
'''


@pytest.mark.parametrize(("entry", "message"), [
    ('"missing.py:Nothing"', "no such file: "),
    ('"no_such_module:Nothing"', "no module named 'no_such_module'"),
    ('"keras.optimizers.Nope"', "keras.optimizers has no 'Nope'"),
    ('"keras.ops.sign"', "is a function, not a keras.optimizers.Optimizer subclass"),
    ('"adamm"', "unknown optimizer 'adamm'; did you mean 'adam'?"),
    ('"bad_rules.py:Raises"', "RuntimeError: this constructor always fails"),
    ('"bad_rules.py:Untraceable"', "rule 'python_on_a_tensor' cannot be traced"),
    ('"wrong_signature.py:Wrong"', "rule two_arguments: expected three positional parameters"),
])
def test_a_bad_optimizer_is_one_line_naming_its_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, message: str) -> None:
    (tmp_path / "bad_rules.py").write_text(BAD_RULES, encoding="utf-8")
    (tmp_path / "wrong_signature.py").write_text(WRONG_SIGNATURE, encoding="utf-8")
    spec = write_spec(tmp_path, f'task = "sigmoid_neuron"\noptimizers = ["gd", {entry}]\n')
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert error.value.field == "optimizers[1]"
    assert message in str(error.value)
    home = tmp_path / "home"
    assert cli.main(["run", str(spec), "--home", str(home), "--quiet"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"gdbench: error: {spec}: optimizers[1]: ") and message in err
    assert not home.exists()


def test_a_budget_matched_comparison_starts_each_brought_optimizer_at_its_defaults(
        tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    spec = load_spec(write_spec(folder, """
task = "linear_regression"
batch_size = 10
epochs = 3
optimizers = ["keras.optimizers.Lion", "my_optimizers.py:HeavyBall"]
compare = {budgets = [1, 2]}
tracking = {mlflow = false, tensorboard = false}
"""))
    study = run_study(spec, home=folder / "home", quiet=True)
    first = {}
    for trial in sorted(study.trials, key=lambda t: t.number):
        first.setdefault(trial.params["optimizer"], trial.params)
    assert first["lion"] == {"optimizer": "lion", "learning_rate": 1e-3, "beta_2": 0.99}
    assert first["heavyball"] == {"optimizer": "heavyball", "learning_rate": 0.01, "momentum": 0.9}
    assert len(study.trials) == 4
    assert (folder / "home" / "reports" / spec.name).is_dir()


def test_tune_takes_the_keywords_of_a_brought_optimizer_s_default_space(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    text = ('task = "sigmoid_neuron"\noptimizers = ["adam", "my_optimizers.py:HeavyBall", '
            '"keras.optimizers.Lion"]\ntune = ["{keyword}"]\n')
    spec = load_spec(write_spec(folder, text.format(keyword="beta_2")))
    assert [set(o.space) for o in spec.optimizers] == [{"beta_2"}, set(), {"beta_2"}]
    spec = load_spec(write_spec(folder, text.format(keyword="momentum")))
    assert [set(o.space) for o in spec.optimizers] == [set(), {"momentum"}, set()]
    (folder / "signum.py").write_text(
        (Path(__file__).resolve().parents[1] / "studies" / "signum.py").read_text())
    with pytest.raises(SpecError, match=r"tune\[0\]: 'betaa' is in no default space; did you "
                                        r"mean 'beta'"):
        load_spec(write_spec(folder, 'task = "sigmoid_neuron"\noptimizer = "signum.py:Signum"\n'
                                     'tune = ["betaa"]\n'))
    spec = load_spec(write_spec(folder, 'task = "sigmoid_neuron"\noptimizer = '
                                        '"signum.py:Signum"\ntune = ["beta"]\n'))
    assert set(spec.optimizers[0].space) == {"beta"}
