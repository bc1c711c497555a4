"""Budget-matched comparisons, fair search spaces and the protocol note of a comparison."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import logging
import math
from pathlib import Path

import numpy as np
import pytest

import gdbench.optimizers
from gdbench import comparison_plots
from gdbench.study import SpecError, load_spec, run_study
from gdbench.study.compare.budgets import DEFAULTS_ROW, budget_rows, format_budgets
from gdbench.study.compare.protocol import protocol_note
from gdbench.study.plan.inclusions import INCLUSIONS, broken_inclusions
from gdbench.study.spec import spaces
from gdbench.study.spec.model import ConfirmSpec

UNTRACKED = "[tracking]\nmlflow = false\ntensorboard = false\n"

COMPARE = ('task = "sigmoid_neuron"\noptimizers = ["gd", "momentum", "adam"]\nepochs = 20\n'
           "compare = {budgets = [2, 3]}\n")


def write(tmp_path: Path, text: str, name: str = "spec") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def keras_default(name: str, keyword: str):
    """The default of ``keyword`` in optimizer ``name``'s constructor, read from its signature."""
    return inspect.signature(gdbench.optimizers.REGISTRY[name].__init__).parameters[keyword].default


def branches(study) -> dict[str, list]:
    """Optimizer → its trials in trial order, read straight from the study."""
    found: dict[str, list] = {}
    for trial in sorted(study.trials, key=lambda t: t.number):
        found.setdefault(trial.params["optimizer"], []).append(trial)
    return found


@pytest.fixture(scope="module", params=[True, False], ids=["population", "one_by_one"])
def compared(request, tmp_path_factory):
    """A budget-matched study of gd, momentum and adam, run once per engine."""
    tmp_path = tmp_path_factory.mktemp("compare")
    population = str(request.param).lower()
    spec = load_spec(write(tmp_path, COMPARE + f"population = {population}\n" + UNTRACKED,
                           f"compare_{population}"))
    return spec, run_study(spec, home=tmp_path, quiet=True), tmp_path


def test_a_compare_spec_runs_random_search_unpruned_with_the_largest_budget_per_branch(
        tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, COMPARE))
    assert spec.compare.budgets == (2, 3)
    assert spec.trials == 3 * 3
    assert spec.sampler.name == "random" and spec.pruner.name == "none" and spec.balance
    with_schedules = load_spec(write(tmp_path, COMPARE + 'schedules = ["constant", "cosine"]\n'
                                     "trials = 18\n"))
    assert with_schedules.trials == 18


def test_every_branch_gets_the_same_trials_the_first_at_its_defaults(compared) -> None:
    _, study, _ = compared
    found = branches(study)
    assert sorted(found) == ["adam", "gd", "momentum"]
    assert {len(trials) for trials in found.values()} == {3}
    for name, trials in found.items():
        first = trials[0]
        searched = [key for key in first.params if key != "optimizer"]
        assert searched, name
        for key in searched:
            assert first.params[key] == keras_default(name, key), (name, key)
        # The rest are drawn: not the defaults again.
        assert any(t.params != first.params for t in trials[1:]), name


def test_the_budget_table_is_the_best_so_far_of_the_stored_trials(compared) -> None:
    spec, study, home = compared
    rows = budget_rows(study, spec.compare.budgets)
    by_optimizer = {row["optimizer"]: row for row in rows}
    firsts = []
    for name, trials in branches(study).items():
        values = np.array([t.value if t.value is not None else np.inf for t in trials])
        best = np.minimum.accumulate(values)
        row = by_optimizer[name]
        assert row["trials"] == len(trials)
        for budget in (1, 2, 3):
            assert row[f"best_after_{budget}"] == pytest.approx(best[budget - 1])
        firsts.append(values[0])
    assert rows[-1]["optimizer"] == DEFAULTS_ROW
    assert rows[-1]["best_after_1"] == pytest.approx(min(firsts))
    assert rows[-1]["best_after_3"] is None and rows[-1]["trials"] == 3

    report = home / "reports" / spec.name
    with open(report / "budgets.csv", newline="", encoding="utf-8") as file:
        stored = list(csv.DictReader(file))
    assert [line["optimizer"] for line in stored] == [row["optimizer"] for row in rows]
    for line, row in zip(stored, rows):
        for key, value in row.items():
            if isinstance(value, float):
                assert float(line[key]) == pytest.approx(value)
    assert (report / "budgets.png").stat().st_size > 0
    assert (report / "protocol.md").read_text(encoding="utf-8") == protocol_note(spec)
    text = format_budgets(rows)
    assert "defaults" in text.splitlines()[0] and "best@3" in text.splitlines()[0]
    assert DEFAULTS_ROW in text


def test_a_failed_trial_spends_its_turn_and_finds_nothing() -> None:
    from gdbench.study.compare.budgets import best_so_far

    assert best_so_far([None, 3.0, None, 1.0, 2.0], "minimize") == [None, 3.0, 3.0, 1.0, 1.0]
    assert best_so_far([0.5, None, 0.7], "maximize") == [0.5, 0.5, 0.7]


def test_a_schedule_branch_starts_at_the_middle_of_its_ranges(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\noptimizers = ["gd", "adam"]\n'
                           'schedules = ["constant", "step_decay"]\nepochs = 10\n'
                           "compare = {budgets = [2]}\n" + UNTRACKED, "schedules"))
    study = run_study(spec, home=tmp_path, quiet=True)
    first: dict[tuple[str, str], object] = {}
    counts: dict[tuple[str, str], int] = {}
    for trial in sorted(study.trials, key=lambda t: t.number):
        branch = (trial.params["optimizer"], trial.params["schedule"])
        counts[branch] = counts.get(branch, 0) + 1
        first.setdefault(branch, trial)
    assert counts == {(o, s): 2 for o in ("gd", "adam") for s in ("constant", "step_decay")}
    decay = first[("adam", "step_decay")].params
    assert decay["learning_rate"] == keras_default("adam", "learning_rate")
    drop = spaces.SCHEDULE_SPACES["step_decay"].parameters["drop"]
    assert decay["schedule.drop"] == pytest.approx((drop.low + drop.high) / 2)
    total_steps = 10 * gdbench.tasks.get("sigmoid_neuron").steps_per_epoch(None)
    steps = spaces.SCHEDULE_SPACES["step_decay"].parameters["steps_per_drop"]
    assert decay["schedule.steps_per_drop"] == max(
        1, round(math.sqrt(steps.low * steps.high) * total_steps))


@pytest.mark.parametrize(("text", "field", "words"), [
    ("compare = {budgets = []}\n", "compare.budgets", "non-empty"),
    ("compare = {}\n", "compare.budgets", "required"),
    ("compare = {budgets = 5}\n", "compare.budgets", "list"),
    ("compare = {budgets = [0, 5]}\n", "compare.budgets[0]", ">= 1"),
    ("compare = {budgets = [5, 5]}\n", "compare.budgets[1]", "increase"),
    ("compare = {budgets = [5, 2]}\n", "compare.budgets[1]", "increase"),
    ("compare = {budget = [5]}\n", "compare.budget", "budgets"),
    ("compare = {budgets = [2, 4]}\ntrials = 10\n", "trials", "= 8"),
    ("compare = {budgets = [2]}\nsampler = \"tpe\"\n", "sampler", "random"),
    ("compare = {budgets = [2]}\npruner = \"median\"\n", "pruner", "none"),
    ("compare = {budgets = [2]}\nbalance = false\n", "balance", "balance = true"),
    ("compare = {budgets = [2]}\n[search]\nlearning_rate = {low = 0.1, high = 1.0}\n",
     "search.learning_rate", "default learning_rate = 0.01"),
])
def test_a_broken_compare_spec_names_its_field(tmp_path: Path, text: str, field: str,
                                               words: str) -> None:
    spec = 'task = "sigmoid_neuron"\noptimizers = ["gd", "momentum"]\n' + text
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, spec))
    assert caught.value.field == field, str(caught.value)
    assert words in str(caught.value)


# -- fair spaces ------------------------------------------------------------------


def test_the_default_spaces_keep_every_inclusion(tmp_path: Path) -> None:
    every = [name for name in gdbench.optimizers.names()]
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\n'
                           f"optimizers = {every!r}\n".replace("'", '"')))
    assert broken_inclusions(spec) == []
    for relation in INCLUSIONS:
        domain = spaces.OPTIMIZER_SPACES[relation.general][relation.keyword]
        high = domain.bounds()[-1]
        assert (high >= relation.value if relation.reaches
                else relation.value in domain.grid()), relation


def test_the_adam_family_searches_epsilon_up_to_one() -> None:
    for name in ("adam", "adamax", "nadam", "amsgrad", "adamw", "rmsprop", "adagrad"):
        assert spaces.OPTIMIZER_SPACES[name]["epsilon"].bounds() == (1e-10, 1.0), name
    for name in ("adam", "nadam", "amsgrad", "adamax", "adamw"):
        assert 0.0 in spaces.OPTIMIZER_SPACES[name]["beta_1"].grid()
    assert 0.0 in spaces.OPTIMIZER_SPACES["momentum"]["momentum"].grid()


@pytest.mark.parametrize(("optimizers", "search", "names"), [
    ('["momentum", {name = "adam", epsilon = 1e-8}]', "", ("adam", "momentum", "epsilon")),
    ('["rmsprop", {name = "adam", beta_1 = 0.9}]', "", ("adam", "rmsprop", "beta_1")),
    ('["gd", "momentum"]', "[search]\nmomentum = {low = 0.5, high = 0.99}\n",
     ("momentum", "gd", "momentum")),
    ('["nesterov", "nadam"]', "[search]\nepsilon = {low = 1e-10, high = 1e-4}\n",
     ("nadam", "nesterov", "epsilon")),
])
def test_a_space_that_breaks_an_inclusion_is_named(tmp_path: Path, optimizers: str, search: str,
                                                   names: tuple[str, ...]) -> None:
    text = f'task = "sigmoid_neuron"\noptimizers = {optimizers}\n' + search
    (line,) = [line for line in broken_inclusions(load_spec(write(tmp_path, text)))
               if line.startswith(names[0])]
    general, special, keyword = names
    assert f"{general} contains {special}" in line and keyword in line


def test_tune_excluding_beta_1_breaks_adam_over_rmsprop(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\noptimizers = ["rmsprop", "adam"]\n'
                           'tune = ["learning_rate", "epsilon"]\n'))
    (line,) = broken_inclusions(spec)
    assert "adam contains rmsprop" in line and "beta_1 = 0.9" in line


def test_run_warns_of_a_broken_inclusion(tmp_path: Path, caplog) -> None:
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\n'
                           'optimizers = ["momentum", {name = "adam", epsilon = 1e-8}]\n'
                           "epochs = 5\ntrials = 2\n" + UNTRACKED, "unfair"))
    with caplog.at_level(logging.WARNING, logger="gdbench.study.plan.inclusions"):
        run_study(spec, home=tmp_path, quiet=True)
    warned = [record.getMessage() for record in caplog.records
              if record.name == "gdbench.study.plan.inclusions"]
    assert len(warned) == 1 and "adam contains momentum" in warned[0], warned


def test_a_fair_run_warns_of_nothing(tmp_path: Path, caplog) -> None:
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\noptimizers = ["gd", "momentum"]\n'
                           "epochs = 5\ntrials = 2\n" + UNTRACKED, "fair"))
    with caplog.at_level(logging.WARNING, logger="gdbench.study.plan.inclusions"):
        run_study(spec, home=tmp_path, quiet=True)
    assert not [r for r in caplog.records if r.name == "gdbench.study.plan.inclusions"]


# -- the protocol note --------------------------------------------------------------


def test_the_protocol_note_says_spaces_budgets_seeds_sampler_and_selection(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'task = {name = "fashion_mnist_2c2d", subset = 64}\n'
                           'optimizers = ["momentum", {name = "adam", beta_2 = 0.99}]\n'
                           "epochs = 2\nseed = 7\ncompare = {budgets = [1, 4]}\n"))
    spec = dataclasses.replace(spec, confirm=ConfirmSpec(seeds=3))
    note = protocol_note(spec)
    assert "learning_rate: log-uniform in [0.0001, 1] (searched)" in note
    assert "epsilon: log-uniform in [1e-10, 1] (searched)" in note
    assert "beta_2 = 0.99 (fixed)" in note
    assert "bias_correction = True (its default, not searched)" in note
    assert "Sampler: random (seed 7)" in note and "Pruner: none" in note
    assert "every branch gets 4 trials" in note and "after 1, 4 trials" in note
    assert "8 trials in all" in note
    assert "over 3 seeds" in note and "Study seed: 7" in note
    assert "`val_loss`, on the validation split" in note and "lowest" in note
    assert "- none: η is constant" in note


def test_the_protocol_note_of_a_toy_comparison_names_the_training_loss(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\noptimizer = "adam"\n'
                           'schedules = ["constant", "cosine"]\n'
                           'objective = {metric = "loss", direction = "minimize"}\n'))
    note = protocol_note(spec)
    assert "training objective" in note and "Confirmation: none" in note
    assert "**cosine** (cosine)" in note and "Trials: 20 in all, balanced" in note


def test_the_protocol_note_reaches_the_mlflow_parent_run(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\noptimizers = ["gd", "adam"]\n'
                           "epochs = 5\ncompare = {budgets = [1]}\n"
                           "[tracking]\ntensorboard = false\n", "tracked"))
    run_study(spec, home=tmp_path, quiet=True)
    from gdbench.tracking import local_artifact_folder

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(spec.name)
    (parent,) = [run for run in client.search_runs([experiment.experiment_id])
                 if run.data.tags.get("gdbench.role") == "parent"]
    folder = local_artifact_folder(uri, parent.info.artifact_uri) / "report"
    assert {"protocol.md", "budgets.csv", "budgets.png"} <= {p.name for p in folder.iterdir()}
    assert (folder / "protocol.md").read_text(encoding="utf-8") == protocol_note(spec)


def test_a_single_optimizer_study_writes_no_protocol(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, 'task = "sigmoid_neuron"\noptimizer = "gd"\nepochs = 5\n'
                           "trials = 2\n" + UNTRACKED, "single"))
    run_study(spec, home=tmp_path, quiet=True)
    assert not (tmp_path / "reports" / "single" / "protocol.md").exists()


# -- the figure ----------------------------------------------------------------------


def test_the_best_so_far_figure_is_drawn_and_refuses_no_curve(tmp_path: Path) -> None:
    path = comparison_plots.plot_best_so_far(
        {"gd": [1.0, 0.5, 0.5], "adam": [math.nan, 0.7, 0.2]}, tmp_path / "best.png",
        budgets=[2, 3], reference=("defaults", 1.0))
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="curves"):
        comparison_plots.plot_best_so_far({}, tmp_path / "none.png")
    with pytest.raises(ValueError, match="path"):
        comparison_plots.plot_best_so_far({"gd": [1.0]}, tmp_path / "best.svg")


# -- the command line ------------------------------------------------------------------


def test_run_and_report_print_the_budget_table(tmp_path: Path, capsys) -> None:
    from gdbench import cli

    spec = write(tmp_path, 'task = "sigmoid_neuron"\noptimizers = ["gd", "adam"]\nepochs = 5\n'
                 "compare = {budgets = [2]}\n[tracking]\ntensorboard = false\n", "printed")
    home = tmp_path / "home"
    assert cli.main(["run", str(spec), "--home", str(home), "--quiet"]) == 0
    ran = capsys.readouterr().out
    assert "best loss after each budget of trials" in ran and DEFAULTS_ROW in ran
    (home / "reports" / "printed" / "budgets.csv").unlink()
    assert cli.main(["report", "printed", "--home", str(home)]) == 0
    reported = capsys.readouterr().out
    assert DEFAULTS_ROW in reported and "best@2" in reported
    assert (home / "reports" / "printed" / "budgets.csv").is_file()
    table = ran[ran.index("best loss after"):].splitlines()[1:6]
    assert "\n".join(table) in reported
