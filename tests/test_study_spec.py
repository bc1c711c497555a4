"""Study specs: the shipped ones load, broken ones fail early, naming file and field."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from gdbench import cli
from gdbench.study import SpecError, load_spec, load_specs, spaces
from gdbench.study.build import TrialSetup, suggest
from gdbench.study.spaces import Choice, Fixed, IntRange, LogUniform, OneMinusLogUniform

STUDIES = Path(__file__).resolve().parent.parent / "studies"

MINIMAL = 'task = "sigmoid_neuron"\noptimizer = "adam"\n'

#: (spec text, the field the error must name, a word the message must hold).
BROKEN_SPECS = [
    (MINIMAL + "trails = 3\n", "trails", "did you mean 'trials'"),
    (MINIMAL + 'trials = "ten"\n', "trials", "integer"),
    (MINIMAL + "epochs = 0\n", "epochs", ">= 1"),
    (MINIMAL + "[search]\nlearning_rate = {low = 1.0, high = 0.1}\n",
     "search.learning_rate.low", "inverted"),
    (MINIMAL + "[search]\nlearning_rate = {low = 0.1, high = 0.1}\n",
     "search.learning_rate.low", "empty"),
    (MINIMAL + "[search]\nlearning_rate = {low = 0.0, high = 1.0}\n",
     "search.learning_rate.low", "log"),
    (MINIMAL + "[search]\nbeta_1 = {low = 0.9, high = 1.0}\n", "search.beta_1.high", "decay rate"),
    (MINIMAL + "[search]\nepsilon = -1.0\n", "search.epsilon", "epsilon"),
    (MINIMAL + "[search]\nlearning_rate = {low = 1e-3, hihg = 1.0}\n",
     "search.learning_rate.hihg", "did you mean 'high'"),
    ('task = "sigmoid_neuron"\noptimizer = "adamm"\n', "optimizer", "did you mean 'adam'"),
    ('task = "sigmoid_neuron"\n', "optimizer", "exactly one"),
    ('task = "sigmoid_nueron"\noptimizer = "gd"\n', "task", "did you mean 'sigmoid_neuron'"),
    ('task = {name = "sigmoid_neuron", start = [1.0]}\noptimizer = "gd"\n', "task.start", "start"),
    ('task = {name = "sigmoid_neuron", strat = [1.0, 2.0]}\noptimizer = "gd"\n',
     "task.strat", "did you mean 'start'"),
    ('task = "sigmoid_neuron"\noptimizer = "gd"\n[search]\nbeta_1 = 0.9\n',
     "search.beta_1", "no optimizer of this study"),
    ('task = "sigmoid_neuron"\noptimizer = {name = "adam", weight_decay = 0.1}\n',
     "optimizer.weight_decay", "adamw"),
    (MINIMAL + 'schedule = "cosin"\n', "schedule", "did you mean 'cosine'"),
    (MINIMAL + '[schedule]\nname = "cosine"\ndropp = 0.5\n', "schedule.dropp", "accepted"),
    (MINIMAL + '[schedule]\nname = "step_decay"\nsteps_per_drop = {low = 1.5, high = 10}\n',
     "schedule.steps_per_drop.low", "whole number"),
    (MINIMAL + '[schedule]\nname = "step_decay"\ndrop = 1.5\n', "schedule.drop", "drop"),
    (MINIMAL + 'sampler = "tpr"\n', "sampler", "did you mean 'tpe'"),
    (MINIMAL + 'sampler = {name = "tpe", n_startup = 3}\n', "sampler.n_startup", "accepted"),
    (MINIMAL + 'sampler = "grid"\n', "adam.learning_rate", "grid sampler"),
    (MINIMAL + 'pruner = "mediam"\n', "pruner", "did you mean 'median'"),
    (MINIMAL + 'pruner = {name = "median", n_startup = 3}\n', "pruner.n_startup", "accepted"),
    (MINIMAL + 'objective = "val_accuracy"\n', "objective.metric", "loss"),
    (MINIMAL + 'objective = {metric = "loss", direction = "down"}\n',
     "objective.direction", "minimize"),
    ('task = "digits_mlp"\noptimizer = "gd"\npopulation = true\n', "population", "toy tasks"),
    (MINIMAL + 'storage = "optuna.db"\n', "storage", "URL"),
    (MINIMAL + "[tracking]\nmlfow = false\n", "tracking.mlfow", "did you mean 'mlflow'"),
    (MINIMAL + 'tune = ["learnin_rate"]\n', "tune[0]", "did you mean 'learning_rate'"),
    ('task = "sigmoid_neuron"\noptimizers = ["gd", "gd"]\n', "optimizers[1]", "twice"),
    (MINIMAL.replace("optimizer", "optimizers").replace('"adam"', '["adam", {name = "adam"}]'),
     "optimizers[1]", "label"),
    (MINIMAL + 'schedules = ["cosine", "cosine"]\n', "schedules[1]", "label"),
    (MINIMAL + 'schedules = ["cosine", {name = "cosine", label = "2nd"}]\n',
     "schedules[1].label", "letters"),
    (MINIMAL + "trials = [\n", "(syntax)", "TOML"),
    (('[[study]]\ntask = "sigmoid_neuron"\noptimizer = "gd"\n[[study]]\nname = "b"\n'
     'task = "sigmoid_neuron"\noptimizer = "gd"\n'), "study[0].name", "several studies"),
]
if importlib.util.find_spec("cmaes") is None:
    BROKEN_SPECS.append((MINIMAL + 'sampler = "cmaes"\n', "sampler", "gdbench[cmaes]"))


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_spec_loads(path: Path) -> None:
    specs = load_specs(path)
    assert specs
    for spec in specs:
        assert spec.source == path
        assert spec.trials >= 1


def test_three_line_spec_gets_the_default_space(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "trials = 50\n", "three_lines.toml"))
    assert spec.name == "three_lines"
    assert spec.trials == 50
    assert spec.population  # a toy task
    assert spec.objective.metric == "loss" and spec.objective.direction == "minimize"
    assert spec.sampler.name == "tpe" and spec.pruner.name == "median"
    (adam,) = spec.optimizers
    assert adam.space == spaces.OPTIMIZER_SPACES["adam"]
    assert isinstance(adam.space["learning_rate"], LogUniform)
    assert adam.space["beta_2"] == OneMinusLogUniform(1e-4, 1e-1)


def test_search_ranges_fixed_values_choices_and_precedence(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """
task = {name = "digits_mlp", subset = 100}
optimizers = ["gd", {name = "adam", beta_1 = 0.8}]
[search]
learning_rate = {low = 1e-3, high = 1.0}
beta_1 = {low = 0.5, high = 0.99}
beta_2 = {low = 0.9, high = 0.999, log = false}
bias_correction = {choices = [true, false]}
epsilon = 1e-7
"""))
    gd, adam = spec.optimizers
    assert gd.space == {"learning_rate": LogUniform(1e-3, 1.0)}
    assert adam.space["learning_rate"] == LogUniform(1e-3, 1.0)
    assert adam.space["beta_1"] == Fixed(0.8)  # the optimizer's own table wins over [search]
    assert adam.space["beta_2"].bounds() == pytest.approx((0.9, 0.999))
    assert adam.space["bias_correction"] == Choice((True, False))
    assert adam.space["epsilon"] == Fixed(1e-7)
    assert spec.objective.metric == "val_loss" and not spec.population


def test_decay_rate_range_is_sampled_as_one_minus_beta_on_a_log_scale(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "[search]\nbeta_2 = {low = 0.9, high = 0.9999}\n"))
    domain = spec.optimizers[0].space["beta_2"]
    assert isinstance(domain, OneMinusLogUniform)
    assert domain.parameter_name("beta_2") == "one_minus_beta_2"
    assert (domain.low, domain.high) == pytest.approx((1e-4, 0.1))
    assert domain.to_value(1e-3) == pytest.approx(0.999)


def test_schedule_spaces_are_sized_from_the_run(tmp_path: Path) -> None:
    import optuna

    spec = load_spec(write(tmp_path, MINIMAL + """
[[schedules]]
name = "cyclical"
[[schedules]]
name = "warmup"
target = "cosine"
warmup_steps = {low = 5, high = 10}
"""))
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    setup = suggest(trial, spec, total_steps=1000)
    assert setup.schedule in ("cyclical", "warmup")
    schedule = setup.build_schedule()
    rates = [float(schedule(step)) for step in (0, 500, 999)]
    assert all(math.isfinite(rate) and rate >= 0 for rate in rates)
    cyclical = spaces.resolve(spec.schedules[0].space["step_size"], 1000)
    assert cyclical == IntRange(50, 250, log=True)
    assert spec.schedules[1].target.name == "cosine"
    assert spec.schedules[1].space["warmup_steps"] == IntRange(5, 10, log=True)
    assert TrialSetup.from_json(setup.to_json()) == setup


def test_variants_of_one_optimizer_by_label(tmp_path: Path) -> None:
    import optuna

    spec = load_spec(STUDIES / "adam_bias_correction.toml")
    assert [o.label for o in spec.optimizers] == ["adam", "adam_no_bc"]
    assert {o.name for o in spec.optimizers} == {"adam"}
    assert spec.optimizers[1].space["bias_correction"] == Fixed(False)
    study = optuna.create_study()
    study.enqueue_trial({"optimizer": "adam_no_bc"})
    trial = study.ask()
    setup = suggest(trial, spec, total_steps=100)
    assert (setup.optimizer, setup.optimizer_label) == ("adam", "adam_no_bc")
    assert setup.hyperparameters()["optimizer"] == "adam_no_bc"
    assert setup.build_optimizer().bias_correction is False
    assert "adam_no_bc.learning_rate" in trial.params


def test_variants_of_one_schedule_by_label_and_tune(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + """
tune = ["learning_rate"]
[[schedules]]
name = "warmup"
[[schedules]]
name = "warmup"
label = "warmup_cosine"
target = "cosine"
"""))
    plain, cosine = spec.schedules
    assert (plain.label, cosine.label) == ("warmup", "warmup_cosine")
    assert cosine.target is not None and plain.target is None
    # Left out of `tune`: held at the middle of the default range, not searched.
    assert cosine.space["warmup_steps"] == spaces.Steps(pytest.approx(math.sqrt(0.01 * 0.2)))
    assert set(spec.optimizers[0].space) == {"learning_rate"}


@pytest.mark.parametrize(("text", "field", "word"), BROKEN_SPECS,
                         ids=[case[1] for case in BROKEN_SPECS])
def test_broken_spec_names_file_and_field_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str, word: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_specs(path)
    error = caught.value
    assert error.field == field
    assert str(error).startswith(f"{path}: {field}: ")
    assert word.lower() in str(error).lower()

    home = tmp_path / "home"
    status = cli.main(["run", str(path), "--home", str(home), "--quiet"])
    assert status == cli.USAGE_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gdbench: error: {error}"]
    assert not home.exists()  # no study, run or log directory


def test_every_registered_optimizer_and_schedule_has_a_default_space() -> None:
    import gdbench.optimizers
    import gdbench.schedules

    assert list(spaces.OPTIMIZER_SPACES) == gdbench.optimizers.names()
    assert list(spaces.SCHEDULE_SPACES) == gdbench.schedules.names()
    for name, space in spaces.OPTIMIZER_SPACES.items():
        keywords = gdbench.optimizers.REGISTRY[name].keywords()
        assert set(space) <= set(keywords), name


def test_the_samplers_said_to_prepare_nothing_do_prepare_nothing() -> None:
    import optuna

    from gdbench.study import samplers

    for name in samplers.PREPARE_FREE:
        sampler = samplers.SAMPLERS[name](seed=0)
        base = optuna.samplers.BaseSampler.before_trial
        prepares = type(sampler).before_trial
        if prepares is not base:  # TPE hands it to its random sampler, which prepares nothing
            assert type(sampler._random_sampler).before_trial is base, name
