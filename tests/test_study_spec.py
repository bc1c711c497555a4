"""Study specs: the shipped ones load, broken ones fail early, naming file and field."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest

from gdbench import cli
from gdbench.study.spec import domains
from gdbench.study import SpecError, load_spec, load_specs
from gdbench.study.plan.build import TrialSetup, suggest
from gdbench.study.spec import spaces
from gdbench.study.spec.domains import Choice, Fixed, IntRange, LogUniform, OneMinusLogUniform
from gdbench.tracking import limits

STUDIES = Path(__file__).resolve().parent.parent / "studies"

MINIMAL = 'task = "sigmoid_neuron"\noptimizer = "adam"\n'

# One name searched in two kinds by two optimizers (or schedules) of one study.
RANGE_AND_CHOICES = ('task = "sigmoid_neuron"\n'
                     'optimizers = ["gd", {name = "adam", learning_rate = {choices = [0.01, 0.1]}}]\n')
LOG_AND_LINEAR = ('task = "sigmoid_neuron"\noptimizers = ["adamax", '
                  '{name = "adam", beta_2 = {low = 0.9, high = 0.999, log = false}}]\n')
TWO_LADDERS = ('task = "sigmoid_neuron"\n'
               'optimizers = ["adamax", {name = "adam", beta_2 = {low = 0.99, high = 0.999}}]\n')
TWO_GRIDS = ('task = "sigmoid_neuron"\noptimizer = "gd"\nsampler = "grid"\n'
             '[[schedules]]\nname = "step_decay"\ndrop = {low = 0.1, high = 0.5, step = 0.2}\n'
             'steps_per_drop = 10\n'
             '[[schedules]]\nname = "piecewise_constant"\ndrop = {low = 0.1, high = 0.3, step = 0.1}\n'
             '[search]\nlearning_rate = 0.1\n')

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
    (RANGE_AND_CHOICES, "optimizers[1].learning_rate", "(default space of gd).learning_rate"),
    (LOG_AND_LINEAR, "optimizers[1].beta_2", "(default space of adamax).beta_2"),
    (TWO_LADDERS, "optimizers[1].beta_2", "two different sets of choices"),
    (TWO_GRIDS, "schedules[1].drop", "one grid per name"),
    (MINIMAL + 'pruner = "mediam"\n', "pruner", "did you mean 'median'"),
    (MINIMAL + 'pruner = {name = "median", n_startup = 3}\n', "pruner.n_startup", "accepted"),
    (MINIMAL + 'objective = "val_accuracy"\n', "objective.metric", "loss"),
    (MINIMAL + 'objective = {metric = "loss", direction = "down"}\n',
     "objective.direction", "minimize"),
    ('task = "fashion_mnist_2c2d"\noptimizer = "gd"\npopulation = true\n', "population", "MLP"),
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
    (MINIMAL + f'description = "{"d" * 8001}"\n', "description",
     "8001 characters long; MLflow keeps at most 8000"),
    (MINIMAL + f'tracking = {{experiment_name = "{"e" * 501}"}}\n', "tracking.experiment_name",
     "at most 500"),
    ('task = "sigmoid_neuron"\noptimizers = ["gd", {name = "gd", label = "' + "g" * 6001
     + '"}]\n', "optimizers[1].label", "at most 6000"),
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
    assert spec.objective.metric == "val_loss" and spec.population  # an MLP


def test_decay_rate_range_is_searched_as_beta_with_one_minus_beta_log_spaced(
        tmp_path: Path) -> None:
    import optuna

    spec = load_spec(write(tmp_path, MINIMAL + "[search]\nbeta_2 = {low = 0.9, high = 0.9999}\n"))
    domain = spec.optimizers[0].space["beta_2"]
    assert isinstance(domain, OneMinusLogUniform)
    assert (domain.low, domain.high) == pytest.approx((1e-4, 0.1))
    assert domain.values == (0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999)
    # Log-spaced in 1 − β: each step divides it by 2 or 2.5, four decades in ten values.
    ratios = [(1 - a) / (1 - b) for a, b in zip(domain.values, domain.values[1:])]
    assert all(2.0 - 1e-9 <= ratio <= 2.5 + 1e-9 for ratio in ratios)
    # Every view of the domain agrees: its ends, its grid, its middle and the values tried.
    assert domain.bounds() == (0.9, 0.9999) == (domain.values[0], domain.values[-1])
    assert domain.grid() == list(domain.values)
    assert domain.nominal() in domain.values and domain.middle() == Fixed(domain.nominal())
    assert [value for value, _ in domain.candidates()] == [0.9, 0.9999]

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(400):
        trial = study.ask()
        drawn.append(suggest(trial, spec, total_steps=100).optimizer_values["beta_2"])
        assert trial.params["beta_2"] == drawn[-1]
        assert trial.distributions["beta_2"] == domain.distribution()
        study.tell(trial, 0.0)
    assert set(drawn) == set(domain.values)
    # As near 1 as near 0.9: 1 − β is spread evenly over its four decades.
    assert 0.3 < sum(beta >= 0.999 for beta in drawn) / len(drawn) < 0.5


@pytest.mark.parametrize(("low", "high"), [(1e-4, 0.3), (1e-2, 0.5), (0.03, 0.1), (0.09, 0.1),
                                           (0.1, 1.0), (2e-4, 3e-3)])
def test_a_decay_ladder_holds_its_ends_and_readable_values_between(low: float, high: float) -> None:
    domain = OneMinusLogUniform(low, high)
    values = domain.values
    assert len(values) >= 5 and list(values) == sorted(set(values))
    assert values[0] == pytest.approx(1 - high) and values[-1] == pytest.approx(1 - low)
    for beta in values:
        assert len(repr(beta)) <= len(repr(1 - high)) + 4, beta  # 0.3, not 0.30000000000000004
    assert domain.nominal() in values


@pytest.mark.parametrize("domain", [
    LogUniform(1e-4, 1.0), domains.Uniform(0.1, 0.9), domains.Uniform(0.0, 1.0, 0.25),
    IntRange(1, 100, log=True), IntRange(0, 10, step=2), Choice((True, False)),
    OneMinusLogUniform(1e-3, 0.1),
], ids=repr)
def test_a_domain_suggests_under_its_keyword_the_distribution_it_declares(domain) -> None:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        value = domain.suggest(trial, "keyword")
        assert trial.params == {"keyword": value}
        assert trial.distributions == {"keyword": domain.distribution()}
        low, high = domain.bounds()[0], domain.bounds()[-1]
        assert low <= value <= high if not isinstance(domain, Choice) else value in (low, high)
        study.tell(trial, 0.0)


MULTI = """
task = "sigmoid_neuron"
trials = 40
[[optimizers]]
name = "adam"
beta_2 = {low = 0.99, high = 0.9999}
[[optimizers]]
name = "gd"
[[optimizers]]
name = "adadelta"
"""


def test_every_optimizer_suggests_its_keywords_by_the_name_the_trackers_show(
        tmp_path: Path) -> None:
    import optuna

    from gdbench.study.plan.samplers import make_sampler

    spec = load_spec(write(tmp_path, MULTI))
    spaces_by_label = {optimizer.label: optimizer.space for optimizer in spec.optimizers}
    study = optuna.create_study(sampler=make_sampler(spec))
    for _ in range(spec.trials):
        trial = study.ask()
        setup = suggest(trial, spec, total_steps=100)
        tracked = setup.hyperparameters()
        assert set(trial.params) == {"optimizer"} | set(spaces_by_label[setup.optimizer_label])
        for name, value in trial.params.items():
            assert tracked[name] == value, name
            if name != "optimizer":
                low, high = spaces_by_label[setup.optimizer_label][name].bounds()
                assert low <= value <= high, (name, value)
        study.tell(trial, setup.learning_rate)
    names = {name for trial in study.trials for name in trial.params}
    assert names == {"optimizer", "learning_rate", "beta_1", "beta_2", "epsilon", "rho"}
    assert 0.99 <= min(t.params["beta_2"] for t in study.trials if "beta_2" in t.params)


def test_schedules_name_their_parameters_alike_in_optuna_and_the_trackers(
        tmp_path: Path) -> None:
    import optuna

    spec = load_spec(write(tmp_path, MINIMAL + """
[[schedules]]
name = "step_decay"
[[schedules]]
name = "piecewise_constant"
[[schedules]]
name = "warmup"
target = {name = "cosine_restarts"}
"""))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        setup = suggest(trial, spec, total_steps=1000)
        tracked = setup.hyperparameters()
        assert all(tracked[name] == value for name, value in trial.params.items())
        seen |= set(trial.params)
        study.tell(trial, 0.0)
    assert {"schedule", "schedule.drop", "schedule.steps_per_drop", "schedule.warmup_steps",
            "schedule.target.minimal_fraction", "schedule.target.period"} <= seen
    assert not any(name.startswith(("step_decay.", "warmup.", "one_minus")) for name in seen)


def test_grid_sampler_walks_a_decay_rate_range_by_its_readable_values(tmp_path: Path) -> None:
    from gdbench.study.plan.build import parameter_grid

    spec = load_spec(write(tmp_path, MINIMAL + """sampler = "grid"
tune = []
[search]
learning_rate = {choices = [0.01, 0.1]}
beta_2 = {low = 0.9, high = 0.999}
"""))
    assert parameter_grid(spec) == {
        "learning_rate": [0.01, 0.1], "beta_2": [0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999]}


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
    cyclical = domains.resolve(spec.schedules[0].space["step_size"], 1000)
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
    assert set(trial.params) == {"optimizer", "learning_rate"}


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
    assert cosine.space["warmup_steps"] == domains.Steps(pytest.approx(math.sqrt(0.01 * 0.2)))
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

    from gdbench.study.plan import samplers

    for name in samplers.PREPARE_FREE:
        sampler = samplers.SAMPLERS[name](seed=0)
        base = optuna.samplers.BaseSampler.before_trial
        prepares = type(sampler).before_trial
        if prepares is not base:  # TPE hands it to its random sampler, which prepares nothing
            assert type(sampler._random_sampler).before_trial is base, name


def test_a_spec_saved_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    text = MINIMAL + 'description = "Adam on the neuron"\n'
    plain = load_spec(write(tmp_path, text, "plain.toml"))
    marked = tmp_path / "marked.toml"
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert dataclasses.replace(load_spec(marked), name="plain", source=plain.source) == plain


def test_a_folder_given_as_the_spec_is_told_as_a_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert cli.main(["run", str(tmp_path), "--home", str(home), "--quiet"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gdbench: error: {tmp_path}: (file): is a folder; give the spec file "
                   "(a .toml file) in it"]
    assert not home.exists()


def test_a_hyperparameter_name_longer_than_mlflow_keeps_is_refused_while_reading(
        tmp_path: Path) -> None:
    keyword = "k" * 251
    (tmp_path / "long_rule.py").write_text(f"""
import gdbench.optimizers

def rule(param, grad, slots, *, step, learning_rate, {keyword}):
    return param - learning_rate * {keyword} * grad, slots

Long = gdbench.optimizers.rule_optimizer(rule, slots=(), name="Long", learning_rate=0.01,
                                         {keyword}=0.5)
""", encoding="utf-8")
    path = write(tmp_path, 'task = "sigmoid_neuron"\n'
                 f'optimizer = {{name = "long_rule.py:Long", {keyword} = {{low = 0.1, high = 1}}}}\n')
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field == f"optimizer.{keyword}"
    assert "251 characters long; MLflow keeps at most 250" in str(caught.value)


def test_the_lengths_checked_are_mlflows() -> None:
    from mlflow.utils import validation

    assert limits.MAX_EXPERIMENT_NAME_LENGTH == validation.MAX_EXPERIMENT_NAME_LENGTH
    assert limits.MAX_KEY_LENGTH == validation.MAX_ENTITY_KEY_LENGTH
    assert limits.MAX_PARAM_VALUE_LENGTH == validation.MAX_PARAM_VAL_LENGTH
    assert limits.MAX_DESCRIPTION_LENGTH == min(validation.MAX_TAG_VAL_LENGTH,
                                                validation.MAX_EXPERIMENT_TAG_VAL_LENGTH)
