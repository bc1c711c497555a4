"""The figures that compare optimizers: η sensitivity, Optuna's plots per optimizer, log axes,
the surface's colours, and the best trial of each optimizer in the terminal and the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from optuna.distributions import CategoricalDistribution, FloatDistribution

from gdbench import cli, comparison_plots, plots
from gdbench.study.plan.build import TrialSetup
from gdbench.study.report import by_optimizer
from gdbench.study.report.leaderboard import write_optuna_report
from gdbench.study.text import cell

#: (optimizer, η, ε or None, value): losses from 1e-9 to 0.4, adam's ε searched, gd's not.
TRIALS = [
    ("gd", 0.01, None, 0.4), ("gd", 0.3, None, 2e-3), ("gd", 3.0, None, 1.945e-9),
    ("gd", 8.0, None, 0.39),
    ("adam", 1e-3, 1e-7, 0.2), ("adam", 1e-2, 1e-3, 4e-4), ("adam", 0.1, 1e-5, 0.05),
    ("adam", 0.03, 1e-8, 3e-5),
]


def comparison_study(direction: str = "minimize", trials=TRIALS) -> optuna.Study:
    """An in-memory study as gdbench records one: Optuna params, setup, hyperparameters."""
    study = optuna.create_study(direction=direction, study_name="cmp")
    choice = CategoricalDistribution(("gd", "adam"))
    for optimizer, rate, epsilon, value in trials:
        values = {"learning_rate": rate} | ({"epsilon": epsilon} if epsilon else {})
        setup = TrialSetup(optimizer=optimizer, optimizer_values=values)
        params = {"optimizer": optimizer, **values}
        distributions = {"optimizer": choice,
                         "learning_rate": FloatDistribution(1e-4, 10.0, log=True)}
        if epsilon:
            distributions["epsilon"] = FloatDistribution(1e-9, 1e-2, log=True)
        study.add_trial(optuna.trial.create_trial(
            value=value, params=params, distributions=distributions,
            intermediate_values={0: 0.5, 1: value},
            user_attrs={"setup": setup.to_json(), "hyperparameters": setup.hyperparameters()}))
    return study


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """File name → the figure saved there, as matplotlib drew it."""
    found: dict[str, Figure] = {}
    save = Figure.savefig

    def savefig(figure: Figure, target, *args, **kwargs):
        name = Path(str(target)).name
        found[name.split(".", 2)[2] if name.startswith(".") else name] = figure
        return save(figure, target, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return found


def texts(figure: Figure) -> list[str]:
    """Every text of a figure: titles, labels, tick labels, legends."""
    from matplotlib.text import Text

    return [text.get_text() for text in figure.findobj(Text)]


def test_the_sensitivity_plot_draws_every_trial_against_its_eta_and_stars_each_best(
        tmp_path: Path, figures: dict[str, Figure]) -> None:
    study = comparison_study()
    (path,) = by_optimizer.write_sensitivity(study, tmp_path, "loss")
    assert path.name == "lr_sensitivity.png" and path.is_file()
    (axes,) = figures["lr_sensitivity.png"].axes
    assert axes.get_xscale() == "log"
    assert axes.get_yscale() == "log"  # the losses span nine decades
    dots = [c.get_offsets() for c in axes.collections if c.get_sizes()[0] < 100]
    drawn = sorted(tuple(map(float, point)) for offsets in dots for point in offsets)
    assert drawn == sorted((rate, value) for _, rate, _, value in TRIALS)
    stars = {tuple(map(float, c.get_offsets()[0])): c.get_label()
             for c in axes.collections if c.get_sizes()[0] >= 100}
    assert stars == {(3.0, 1.945e-9): "gd: best 1.945e-09 at η=3 (4 runs)",
                     (0.03, 3e-5): "adam: best 3e-05 at η=0.03 (4 runs)"}
    # The legend prints the leaderboard's numbers, by the leaderboard's own function.
    legend = [text.get_text() for text in figures["lr_sensitivity.png"].legends[0].get_texts()]
    assert f"best {cell(1.945e-9)}" in legend[1] or f"best {cell(1.945e-9)}" in legend[0]


def test_a_maximized_objective_stars_the_largest_and_a_narrow_range_stays_linear(
        tmp_path: Path, figures: dict[str, Figure]) -> None:
    study = comparison_study("maximize", [("gd", 0.1, None, 0.8), ("gd", 1.0, None, 0.9),
                                          ("adam", 0.01, 1e-7, 0.85)])
    by_optimizer.write_sensitivity(study, tmp_path, "accuracy")
    (axes,) = figures["lr_sensitivity.png"].axes
    assert axes.get_yscale() == "linear"
    stars = {c.get_label() for c in axes.collections if c.get_sizes()[0] >= 100}
    assert stars == {"gd: best 0.9 at η=1 (2 runs)", "adam: best 0.85 at η=0.01 (1 runs)"}


def test_one_optimizer_at_one_eta_gets_no_sensitivity_plot(tmp_path: Path) -> None:
    study = comparison_study(trials=[("gd", 0.1, None, 0.3), ("gd", 0.1, None, 0.2)])
    assert by_optimizer.write_sensitivity(study, tmp_path, "loss") == []
    with pytest.raises(ValueError, match="η must be > 0"):
        comparison_plots.plot_learning_rate_sensitivity({"gd": [(0.0, 1.0)]}, tmp_path / "x.png")


def test_optunas_plots_are_drawn_per_optimizer_over_its_own_parameters(
        tmp_path: Path, figures: dict[str, Figure]) -> None:
    written = {path.name for path in write_optuna_report(comparison_study(), tmp_path)}
    assert {"parallel_coordinate_adam.png", "parallel_coordinate_gd.png",
            "contour_adam.png"} <= written
    # Never pooled over optimizers; GD searches one parameter: no contour of it.
    assert not {"parallel_coordinate.png", "contour.png", "contour_gd.png"} & written
    for name in ("parallel_coordinate_adam.png", "parallel_coordinate_gd.png",
                 "contour_adam.png"):
        shown = texts(figures[name])
        assert "None" not in shown
        assert "optimizer" not in shown
        assert not any("epsilon" in text for text in shown) or "adam" in name
    adam = " ".join(texts(figures["parallel_coordinate_adam.png"]))
    assert "epsilon" in adam and "learning_rate" in adam and "log10 objective" in adam
    # The objective spans decades: its axes are logarithmic.
    (history,) = figures["optimization_history.png"].axes[:1]
    assert history.get_yscale() == "log"
    # Each trial's curve in its optimizer's colour, one legend entry per optimizer.
    (curves,) = figures["intermediate_values.png"].axes[:1]
    assert curves.get_yscale() == "log"
    colours = {line.get_label(): mcolors.to_hex(line.get_color()) for line in curves.get_lines()}
    assert colours == {f"Trial{number}": plots.color_for(row[0])
                       for number, row in enumerate(TRIALS)}
    assert [t.get_text() for t in curves.get_legend().get_texts()] == ["adam", "gd"]


def test_optunas_style_stays_in_optunas_figures(tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    write_optuna_report(comparison_study(), tmp_path)
    # Optuna's matplotlib plots call plt.style.use("ggplot"), which would grey
    # the background of every gdbench figure drawn after them.
    assert matplotlib.rcParams["axes.facecolor"] == before["axes.facecolor"]
    assert {key: value for key, value in matplotlib.rcParams.items()
            if before.get(key) != value} == {}


def test_a_study_of_one_optimizer_keeps_one_parallel_coordinate_plot(
        tmp_path: Path) -> None:
    study = comparison_study(trials=[row for row in TRIALS if row[0] == "adam"])
    written = {path.name for path in write_optuna_report(study, tmp_path)}
    assert {"parallel_coordinate.png", "contour.png"} <= written
    assert not any(name.startswith("parallel_coordinate_") for name in written)


def test_the_history_axis_goes_logarithmic_only_over_decades() -> None:
    assert plots.spans_decades([1e-9, 0.4])
    assert not plots.spans_decades([0.1, 0.4])
    assert not plots.spans_decades([-1.0, 100.0])
    assert plots.spans_decades([0.001, 0.1, math.nan])


def test_every_optimizers_colour_stands_out_on_the_surface() -> None:
    from gdbench._plot_style import _EXTRA_COLORS, _OPTIMIZER_COLORS

    surface = plots.SURFACE_CMAP(np.linspace(0.0, 1.0, 256))[:, :3]
    for color in [*_OPTIMIZER_COLORS.values(), *_EXTRA_COLORS]:
        distance = np.linalg.norm(surface - np.array(mcolors.to_rgb(color)), axis=1).min()
        assert distance > 0.24, color


def test_the_paths_legend_prints_the_given_value_as_the_leaderboard_does(
        tmp_path: Path, figures: dict[str, Figure]) -> None:
    import gdbench.optimizers
    import gdbench.tasks

    task = gdbench.tasks.get("sigmoid_neuron")
    fit = task.fit(gdbench.optimizers.get("gd", learning_rate=1.0), epochs=5)
    plots.plot_trajectories(task, {"gd": fit.trajectory, "adam": fit.trajectory},
                            tmp_path / "p.png", final_values={"gd": 2.42e-31},
                            value_name="loss")
    legend = [t.get_text() for t in figures["p.png"].legends[0].get_texts()]
    assert legend[1] == f"gd — loss {cell(2.42e-31)}" == "gd — loss 2.42e-31"
    assert legend[2].startswith("adam — loss ")  # no value given: its path's end on the surface
    contour = figures["p.png"].axes[0].collections[0]
    assert contour.get_cmap() is plots.SURFACE_CMAP


def test_best_of_each_is_one_row_per_optimizer_in_the_markdown(tmp_path: Path) -> None:
    study = comparison_study()
    rows = by_optimizer.best_of_each(study)
    assert [(row["group"], row["trial"], row["value"]) for row in rows] == [
        ("gd", 2, 1.945e-9), ("adam", 7, 3e-5)]
    text = by_optimizer.format_best_of_each(study)
    assert text.splitlines()[0] == "best trial of each optimizer"
    assert "epsilon=1e-08" in text and "1.945e-09" in text
    (path,) = by_optimizer.write_best_of_each(study, tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[2].startswith("| rank | optimizer | trial | value | η |")
    assert lines[4].startswith("| 1 | gd | 2 | 1.945e-09 | 3 |")
    single = comparison_study(trials=TRIALS[:2])
    assert by_optimizer.format_best_of_each(single) is None
    assert by_optimizer.write_best_of_each(single, tmp_path / "one") == []


def test_the_terminal_prints_the_best_of_each_optimizer_after_the_leaderboard(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "toy.toml"
    spec.write_text("""
task = "sigmoid_neuron"
optimizers = ["gd", "momentum", "adam"]
epochs = 10
trials = 9
[tracking]
mlflow = false
tensorboard = false
""", encoding="utf-8")
    home = tmp_path / "runs"
    assert cli.main(["run", str(spec), "--home", str(home), "--quiet"]) == 0
    out = capsys.readouterr().out
    leaderboard_at = out.index("rank  trial  state")
    table = out[out.index("best trial of each optimizer"):].splitlines()
    assert out.index("best trial of each optimizer") > leaderboard_at
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{home / 'optuna.db'}")
    for rank, row in enumerate(by_optimizer.best_of_each(study), start=1):
        assert table[rank + 2].split()[:4] == [str(rank), row["group"], str(row["trial"]),
                                               cell(row["value"])]
    assert {row["group"] for row in by_optimizer.best_of_each(study)} == {
        "gd", "momentum", "adam"}
    report = home / "reports" / "toy"
    assert (report / "best_of_each.md").is_file() and (report / "lr_sensitivity.png").is_file()
    assert cli.main(["report", "toy", "--home", str(home), "--out", str(tmp_path / "r")]) == 0
    assert "best trial of each optimizer" in capsys.readouterr().out
