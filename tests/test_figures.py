"""The best trials' figures of every optimizer: drawn by `run`, the same files again by `report`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from matplotlib.figure import Figure

import gdbench.tasks
from gdbench import _figure_pool
from gdbench.study import load_spec, run_study, write_report
from gdbench.study.report.figures import FIGURE_RANK, best_trials
from gdbench.study.text import cell
from gdbench.tracking import StoredStudy

OPTIMIZERS = ("adam", "gd")


def write_spec(folder: Path, name: str, task: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f"""
name = "{name}"
task = {task}
optimizers = {list(OPTIMIZERS)!r}
epochs = 12
trials = 8
tune = ["learning_rate"]
sampler = {{name = "random", seed = 1}}
""".replace("'", '"'), encoding="utf-8")
    return path


def figure_files(folder: Path) -> set[str]:
    return {path.name for path in folder.glob("*.png")}


def final_name(target) -> str:
    """The name of the file a figure is saved for (written whole: first to ``.<writer>.<name>``)."""
    name = Path(str(target)).name
    return name.split(".", 2)[2] if name.startswith(".") else name


def record_legends(found: dict[str, list[str]]):
    """A ``Figure.savefig`` that first notes the legend texts (axes' and figure's) by file name."""
    save = Figure.savefig

    def savefig(figure: Figure, target, *args, **kwargs):
        boxes = [ax.get_legend() for ax in figure.axes] + list(figure.legends)
        found[final_name(target)] = [text.get_text() for box in boxes if box is not None
                                         for text in box.get_texts()]
        return save(figure, target, *args, **kwargs)

    return savefig


def written_here(patch: pytest.MonkeyPatch) -> None:
    """The report's figures saved in this process (no worker), where ``savefig`` is watched."""
    patch.setattr(_figure_pool, "default_workers", lambda: 0)


@pytest.fixture
def legends(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """File name → the legend texts of the figure saved there."""
    found: dict[str, list[str]] = {}
    monkeypatch.setattr(Figure, "savefig", record_legends(found))
    written_here(monkeypatch)
    return found


def expected_name(trial: optuna.trial.FrozenTrial) -> str:
    """The run name of a trial of these studies: only η is searched."""
    hyperparameters = trial.user_attrs["hyperparameters"]
    return (f"{hyperparameters['optimizer']} · η={hyperparameters['learning_rate']:.3g}"
            f" · #{trial.number}")


@pytest.fixture(scope="module")
def surface_study(tmp_path_factory: pytest.TempPathFactory):
    """A two-optimizer study on the sigmoid neuron's 2-D surface, and its figures' legends."""
    folder = tmp_path_factory.mktemp("figures")
    found: dict[str, list[str]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", record_legends(found))
        written_here(patch)
        study = run_study(load_spec(write_spec(folder, "two_on_surface",
                                             '{name = "sigmoid_neuron", start = [-1.5, -2.0]}')),
                          home=folder / "home", quiet=True)
    return study, folder / "home", found


def test_run_draws_every_optimizers_best_trials(surface_study) -> None:
    study, home, _ = surface_study
    files = figure_files(home / "reports" / "two_on_surface")
    for optimizer in OPTIMIZERS:
        for figure in ("loss_curves", "paths", "learning_rates"):
            assert f"best_{optimizer}_{figure}.png" in files
    assert {"best_loss_curves.png", "best_paths.png", "best_learning_rates.png"} <= files
    groups = best_trials(study)
    assert sorted(groups) == sorted(OPTIMIZERS)
    assert all(len(members) == FIGURE_RANK for members in groups.values())


def test_legends_name_each_trial_as_its_run(surface_study) -> None:
    study, _, legends = surface_study
    groups = best_trials(study)
    for optimizer, members in groups.items():
        names = [expected_name(trial) for trial in members]
        assert legends[f"best_{optimizer}_loss_curves.png"] == names
        assert legends[f"best_{optimizer}_learning_rates.png"] == names
        # The path legend gives each final loss after the name, and the start first.
        assert [text.split(" — ")[0] for text in legends[f"best_{optimizer}_paths.png"]] == [
            "start", *names]
    leaders = [expected_name(members[0]) for members in groups.values()]
    assert legends["best_loss_curves.png"] == leaders
    assert [text.split(" — ")[0] for text in legends["best_paths.png"]][1:] == leaders


def test_each_trial_drawn_gets_its_optimizers_figures_in_mlflow(surface_study) -> None:
    from mlflow.tracking import MlflowClient

    from gdbench.tracking import local_artifact_folder

    study, home, _ = surface_study
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("two_on_surface")
    runs = {run.data.tags.get("gdbench.trial_number"): run
            for run in client.search_runs([experiment.experiment_id], max_results=1000)}
    drawn = {trial.number: optimizer
             for optimizer, members in best_trials(study).items() for trial in members}
    for number, run in runs.items():
        if number is None:
            continue
        folder = local_artifact_folder(client.tracking_uri, run.info.artifact_uri) / "figures"
        artifacts = {f"figures/{path.name}" for path in folder.glob("*")}
        optimizer = drawn.get(int(number))
        assert artifacts == ({f"figures/best_{optimizer}_{figure}.png" for figure in
                              ("loss_curves", "paths", "learning_rates")}
                             if optimizer else set())


def test_report_writes_the_files_run_wrote(surface_study, tmp_path: Path, legends) -> None:
    study, home, drawn_by_run = surface_study
    loaded = optuna.load_study(study_name=study.study_name,
                               storage=f"sqlite:///{home / 'optuna.db'}")
    written = write_report(loaded, tmp_path, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    assert figure_files(tmp_path) == figure_files(home / "reports" / "two_on_surface")
    assert {path.name for path in written} == {path.name for path in tmp_path.iterdir()}
    groups = best_trials(loaded)
    assert legends["best_gd_loss_curves.png"] == [expected_name(t) for t in groups["gd"]]
    # The paths trained again from what the study recorded (its task's start point
    # among them) end where the run's did: the legends give each trial's loss, as the
    # leaderboard prints it.
    for name in ("best_paths.png", "best_adam_paths.png", "best_gd_paths.png"):
        assert legends[name] == drawn_by_run[name]
    assert legends["best_paths.png"][1:] == [f"{expected_name(members[0])} — loss "
                                             f"{cell(members[0].value)}"
                                             for members in groups.values()]


def test_workers_write_the_files_written_here_byte_for_byte(
    surface_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, home, _ = surface_study
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    written = {}
    for workers in (2, 0):
        monkeypatch.setattr(_figure_pool, "default_workers", lambda workers=workers: workers)
        out = tmp_path / f"workers_{workers}"
        written[workers] = write_report(study, out, tracking_uri=tracking_uri)
        # Every file named is there, and nothing else (no partial file left behind).
        assert sorted(path.name for path in out.iterdir()) == sorted(
            path.name for path in written[workers])
    assert [path.name for path in written[2]] == [path.name for path in written[0]]
    assert len(figure_files(tmp_path / "workers_2")) >= 10
    for path in written[0]:
        assert (tmp_path / "workers_2" / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.fixture(scope="module")
def stored_study(tmp_path_factory: pytest.TempPathFactory):
    """A two-optimizer study on a 3-parameter toy task: no path, curves stored in MLflow."""
    folder = tmp_path_factory.mktemp("stored")
    study = run_study(load_spec(write_spec(folder, "two_stored", '"logistic_regression"')),
                      home=folder / "home", quiet=True)
    return study, folder / "home"


class Trains:
    """Counts the toy trainings (a population, or one trial) started while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        from gdbench.tasks import population

        original_population, original_fit = population.fit_population, gdbench.tasks.ToyTask.fit

        def fit_population(*args, **kwargs):
            self.count += 1
            return original_population(*args, **kwargs)

        def fit(task, *args, **kwargs):
            self.count += 1
            return original_fit(task, *args, **kwargs)

        monkeypatch.setattr(population, "fit_population", fit_population)
        monkeypatch.setattr(gdbench.tasks.ToyTask, "fit", fit)


def test_report_reads_stored_curves_and_trains_only_for_the_learning_rates(
    stored_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legends
) -> None:
    study, home = stored_study
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    trains = Trains(monkeypatch)
    lines: dict[str, list[np.ndarray]] = {}
    save = Figure.savefig

    def savefig(figure: Figure, target, *args, **kwargs):
        lines[final_name(target)] = [line.get_ydata() for ax in figure.axes
                                         for line in ax.get_lines()]
        return save(figure, target, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    written_here(monkeypatch)
    write_report(study, tmp_path, tracking_uri=tracking_uri)

    # One population per optimizer, for its best trials' effective learning rates
    # (three parameters: traced); the loss curves drawn are the stored ones.
    assert trains.count == len(OPTIMIZERS)
    assert figure_files(tmp_path) == figure_files(home / "reports" / "two_stored")
    assert "best_gd_learning_rates.png" in figure_files(tmp_path)
    assert "best_gd_paths.png" not in figure_files(tmp_path)
    groups = best_trials(study)
    stored = StoredStudy(tracking_uri, "two_stored").curves(t.number for t in groups["gd"])
    for line, trial in zip(lines["best_gd_loss_curves.png"], groups["gd"]):
        np.testing.assert_array_equal(line, stored[trial.number]["loss"])
        assert len(line) == 12


def test_report_without_stored_curves_trains_the_toy_trials_again(
    stored_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, home = stored_study
    trains = Trains(monkeypatch)
    write_report(study, tmp_path)
    assert trains.count == len(OPTIMIZERS)
    assert figure_files(tmp_path) == figure_files(home / "reports" / "two_stored")


def test_each_optimizers_figures_are_drawn_before_the_next_optimizer_trains(
    stored_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pool's workers write one optimizer's figures while the next one trains.
    study, _ = stored_study
    events: list[str] = []
    trains = Trains(monkeypatch)
    count = trains.count
    save = Figure.savefig

    def savefig(figure: Figure, target, *args, **kwargs):
        nonlocal count
        if trains.count != count:
            events.append(f"trained {trains.count - count}")
            count = trains.count
        events.append(final_name(target))
        return save(figure, target, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    written_here(monkeypatch)
    write_figures_only(study, tmp_path)
    assert events == ["trained 1", "best_adam_loss_curves.png", "best_adam_learning_rates.png",
                      "trained 1", "best_gd_loss_curves.png", "best_gd_learning_rates.png",
                      "best_loss_curves.png", "best_learning_rates.png"]


def write_figures_only(study: optuna.Study, folder: Path) -> None:
    """The best trials' figures of ``study`` (trained again, nothing read from MLflow)."""
    from gdbench.study.report.by_optimizer import objective_metric
    from gdbench.study.report.figures import write_figures
    from gdbench.study.trials.stored import stored_context

    write_figures(study, folder, context=stored_context(study, None),
                  metric=objective_metric(study))


def stored_trials(direction: str, trials: list[tuple[str, str, float]]) -> optuna.Study:
    """An in-memory study of complete trials: (optimizer, schedule, value) each."""
    from gdbench.study.plan.build import TrialSetup

    study = optuna.create_study(direction=direction)
    for index, (optimizer, schedule, value) in enumerate(trials):
        setup = TrialSetup(optimizer=optimizer, optimizer_values={"learning_rate": 0.1 + index},
                           schedule=None if schedule == "none" else schedule)
        study.add_trial(optuna.trial.create_trial(
            value=value, params={}, distributions={},
            user_attrs={"setup": setup.to_json(),
                        "hyperparameters": setup.hyperparameters()},
            intermediate_values={0: value * 2, 1: value}))
    return study


def test_best_trials_are_ranked_within_each_optimizer_and_schedule() -> None:
    study = stored_trials("minimize", [
        ("gd", "none", 0.5), ("gd", "none", 0.1), ("adam", "none", 0.9),
        ("gd", "cosine", 0.3), ("gd", "none", 0.2), ("gd", "none", 0.7), ("gd", "none", 0.05),
    ])
    groups = {group: [trial.value for trial in members]
              for group, members in best_trials(study).items()}
    assert groups == {"adam + none": [0.9], "gd + cosine": [0.3],
                      "gd + none": [0.05, 0.1, 0.2]}
    maximized = stored_trials("maximize", [("gd", "none", 0.5), ("gd", "none", 0.9),
                                           ("adam", "none", 0.1)])
    assert {group: [t.value for t in members]
            for group, members in best_trials(maximized, rank=1).items()} == {
        "adam": [0.1], "gd": [0.9]}
    with pytest.raises(ValueError, match="rank"):
        best_trials(study, rank=0)


def test_an_image_trial_with_no_stored_curve_shows_its_reported_objective(
    tmp_path: Path, legends
) -> None:
    from gdbench.study.report.figures import write_figures
    from gdbench.study.trials.session import StudyContext

    study = stored_trials("minimize", [("adam", "none", 0.4), ("gd", "none", 0.6)])
    task = gdbench.tasks.get("digits_mlp")
    context = StudyContext(task=task, epochs=2, batch_size=32, steps_per_epoch=1,
                           study_params={})
    written = write_figures(study, tmp_path, context=context, metric="val_loss")
    assert {path.name for path in written} == {
        "best_adam_loss_curves.png", "best_gd_loss_curves.png", "best_loss_curves.png"}
    assert legends["best_loss_curves.png"] == ["adam · η=0.1 · #0", "gd · η=1.1 · #1"]
