"""The lectures' pictures (gdbench.plots) and the effective-learning-rate trace they draw."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import image as mpimg
from matplotlib.backends.backend_agg import FigureCanvasAgg

import gdbench.optimizers
import gdbench.tasks
from gdbench import _surface_plots, plots
from gdbench.tasks.trace import EFFECTIVE_LEARNING_RATES, effective_learning_rate_trace

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_picture(path, *, width: int, height: int, min_bytes: int = 20_000) -> None:
    """A real PNG of the expected size in pixels, with something drawn on it."""
    assert path.exists()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > min_bytes
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (height, width)
    # A blank (single-colour) canvas has zero variance; a figure with axes,
    # text and lines has plenty.
    assert pixels[..., :3].std() > 0.05


@pytest.fixture(scope="module")
def sigmoid():
    return gdbench.tasks.get("sigmoid_neuron")


@pytest.fixture(scope="module")
def sigmoid_paths():
    start, end = np.array([-2.0, -2.0]), np.array([1.8, -2.3])
    straight = start + np.linspace(0.0, 1.0, 40)[:, None] * (end - start)
    bent = np.concatenate([straight[:20], straight[19:] + [0.0, 1.0]])
    return {"gd": straight, "adam (η=0.1)": bent}


@pytest.mark.parametrize("kind, width", [("contour", 816), ("surface", 816), ("both", 1536)])
def test_trajectories_every_kind_renders(tmp_path, sigmoid, sigmoid_paths, kind, width):
    path = plots.plot_trajectories(sigmoid, sigmoid_paths, tmp_path / "deep" / f"{kind}.png",
                                   kind=kind, title=kind, resolution=40)
    assert path == tmp_path / "deep" / f"{kind}.png"
    assert_picture(path, width=width, height=672)


def test_trajectories_of_real_fits_on_a_log_scaled_surface(tmp_path):
    task = gdbench.tasks.get("rosenbrock")
    trajectories = {
        name: task.fit(gdbench.optimizers.get(name, learning_rate=learning_rate), epochs=30)
        .trajectory
        for name, learning_rate in (("gd", 1e-3), ("adam", 0.05))
    }
    path = plots.plot_trajectory_pair(task, trajectories, tmp_path / "rosenbrock.png")
    assert_picture(path, width=1536, height=672)


def test_contour_levels_go_logarithmic_only_for_a_wide_range():
    x, y = np.meshgrid(np.linspace(-2, 2, 60), np.linspace(-1, 3, 60))
    rosenbrock = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    bowl = x**2 + y**2
    log_levels, _ = _surface_plots._contour_levels(rosenbrock)
    linear_levels, _ = _surface_plots._contour_levels(bowl)
    assert np.allclose(np.diff(linear_levels), np.diff(linear_levels)[0])
    ratios = np.diff(log_levels[1:] - log_levels[0])
    assert ratios[-1] / ratios[0] > 100
    assert np.all(np.diff(log_levels) > 0)


def test_trajectories_bounds_zoom_into_the_surface(tmp_path, sigmoid, sigmoid_paths):
    path = plots.plot_trajectories(sigmoid, sigmoid_paths, tmp_path / "zoom.png",
                                   bounds=((-3, 3), (-4, 1)), resolution=30)
    assert_picture(path, width=816, height=672)
    with pytest.raises(ValueError, match="bounds"):
        plots.plot_trajectories(sigmoid, sigmoid_paths, tmp_path / "bad.png",
                                bounds=((3, -3), (-4, 1)))


class _ThreeParameters:
    name = "three"
    parameter_names = ("a", "b", "c")
    surface_bounds = None

    def loss(self, params, batch=None):
        raise AssertionError("the surface of a 3-parameter task must not be evaluated")


def test_trajectories_refuse_what_they_cannot_draw(tmp_path, sigmoid, sigmoid_paths):
    with pytest.raises(ValueError, match="2-parameter.*3 parameters"):
        plots.plot_trajectories(_ThreeParameters(), {"gd": np.zeros((3, 3))}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="kind.*contour, surface, both"):
        plots.plot_trajectories(sigmoid, sigmoid_paths, tmp_path / "x.png", kind="heatmap")
    with pytest.raises(ValueError, match=r"trajectories\['gd'\].*\[steps \+ 1, 2\]"):
        plots.plot_trajectories(sigmoid, {"gd": np.zeros((5, 3))}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="trajectories"):
        plots.plot_trajectories(sigmoid, {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="path.*png"):
        plots.plot_trajectories(sigmoid, sigmoid_paths, tmp_path / "x.jpg", resolution=10)
    assert not list(tmp_path.iterdir())


def test_loss_curves_with_validation(tmp_path):
    epochs = np.arange(1, 31)
    histories = {
        "gd": {"loss": list(1.0 / epochs), "learning_rate": [0.1] * 30},
        "adam": {"loss": list(np.exp(-epochs / 5)), "val_loss": list(1.2 * np.exp(-epochs / 6))},
    }
    path = plots.plot_loss_curves(histories, tmp_path / "loss.png")
    assert_picture(path, width=864, height=576)
    accuracy = {"adam": {"accuracy": [0.1, 0.5, 0.8], "val_accuracy": [0.1, 0.4, 0.7]}}
    path = plots.plot_loss_curves(accuracy, tmp_path / "accuracy.png", metric="accuracy",
                                  log_scale=False)
    assert_picture(path, width=864, height=576)


def test_loss_curves_name_a_missing_metric(tmp_path):
    with pytest.raises(ValueError, match="'accuracy'.*'gd'.*loss"):
        plots.plot_loss_curves({"gd": {"loss": [1.0]}}, tmp_path / "x.png", metric="accuracy")
    with pytest.raises(ValueError, match="histories"):
        plots.plot_loss_curves({}, tmp_path / "x.png")


def test_per_step_series(tmp_path):
    series = {"adam": 0.1 * np.ones(20), "adam_no_bc": 0.316 / np.sqrt(np.arange(1, 21))}
    path = plots.plot_per_step(series, tmp_path / "steps.png", ylabel="|Δw|",
                               title="step sizes", log_scale=True)
    assert_picture(path, width=864, height=576)
    with pytest.raises(ValueError, match=r"series\['gd'\].*1-D"):
        plots.plot_per_step({"gd": np.ones((3, 2))}, tmp_path / "x.png", ylabel="η", title="")
    with pytest.raises(ValueError, match="series"):
        plots.plot_per_step({}, tmp_path / "x.png", ylabel="η", title="")
    noisy = 1.0 / np.arange(1, 31) + 0.05 * np.sin(np.arange(30))
    path = plots.plot_per_step({"batch": 1.0 / np.arange(1, 4), "stochastic": noisy},
                               tmp_path / "epochs.png", ylabel="loss", title="",
                               xlabel="epoch", steps_per_unit={"stochastic": 10})
    assert_picture(path, width=864, height=576)
    with pytest.raises(ValueError, match=r"steps_per_unit\['batch'\]"):
        plots.plot_per_step({"batch": np.ones(3)}, tmp_path / "x.png", ylabel="", title="",
                            steps_per_unit={"batch": 0})


def test_effective_learning_rates_one_panel_per_parameter(tmp_path):
    steps = np.arange(1, 51)[:, None]
    traces = {"adagrad": 0.5 / np.sqrt(steps * [1.0, 4.0]), "gd": np.full((50, 2), 0.1)}
    path = plots.plot_effective_learning_rates(traces, ("w", "b"), tmp_path / "rates.png")
    assert_picture(path, width=1056, height=504)
    with pytest.raises(ValueError, match=r"traces\['gd'\].*\[steps, 3\]"):
        plots.plot_effective_learning_rates({"gd": np.ones((5, 2))}, ("a", "b", "c"),
                                            tmp_path / "x.png")


@pytest.mark.parametrize(("parameters", "runs", "title", "decay", "fixed"), [
    (1, 1, None, 1.0, True),
    (2, 4, "the best trial of each: effective learning rates", 1.0, True),
    (5, 7, "five", 1.0, True),
    (2, 3, "within a decade: minor ticks labelled", 0.05, False),
    (2, 3, "across one power of ten", 0.25, False),
])
def test_effective_learning_rates_fixed_margins_overlap_nothing(monkeypatch, tmp_path,
                                                                parameters, runs, title,
                                                                decay, fixed):
    # The figure is laid out by fixed margins where its log axes label only powers of
    # ten, by constrained layout elsewhere: either way every panel (its tick labels, axis
    # labels and title), the legend and the title lie inside the figure, apart.
    from gdbench import _plot_style

    drawn = []

    def keep(figure, target, **savefig):
        figure.savefig(target, **savefig)
        drawn.append(figure)

    monkeypatch.setattr(_plot_style, "save", keep)
    steps = np.arange(1, 1001)[:, None]
    names = [f"w{index}" for index in range(parameters)]
    traces = {f"adam, cosine · η={0.1 ** run:.3g} β1=0.9 β2=0.999 ε=1e-07 · #{run}":
              (0.3 * 10.0 ** -run / np.sqrt(steps * np.arange(1, parameters + 1))
               ** (run + 1)) ** decay
              for run in range(runs)}
    plots.plot_effective_learning_rates(traces, names, tmp_path / "rates.png", title=title)
    assert (drawn[0].get_layout_engine() is None) == fixed
    canvas = FigureCanvasAgg(drawn[0])
    canvas.draw()
    figure, renderer = drawn[0], canvas.get_renderer()
    boxes = [axes.get_tightbbox(renderer) for axes in figure.axes if axes.get_visible()]
    boxes += [figure.legends[0].get_window_extent(renderer)]
    boxes += [text.get_window_extent(renderer) for text in figure.texts if text.get_text()]
    assert len(boxes) == parameters + 1 + (title is not None)
    whole = figure.bbox
    for index, box in enumerate(boxes):
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1 and whole.y0 <= box.y0 <= box.y1 <= whole.y1
        for other in boxes[index + 1:]:
            assert not box.overlaps(other), (box, other)


@pytest.mark.parametrize("values", [np.geomspace(1e-9, 3.0, 500), np.geomspace(1.0001, 1.0003, 50)])
def test_a_log_axis_title_placed_where_matplotlib_would_place_it(values):
    # title_place skips matplotlib's search above a log axis: the title lands where the
    # search would have put it.
    from matplotlib.figure import Figure

    from gdbench._plot_style import title_place

    extents = []
    for place in ({}, title_place(True)):
        figure = Figure(figsize=(7.2, 4.8))
        axes = figure.add_subplot()
        axes.plot(np.arange(len(values)), values)
        axes.set_yscale("log")
        axes.set_title("effective learning rate", **place)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        extents.append(axes.title.get_window_extent(canvas.get_renderer()).bounds)
    assert extents[0] == extents[1]
    assert title_place(False) == {}


def test_each_optimizer_keeps_its_colour():
    names = gdbench.optimizers.names()
    colours = [plots.color_for(name) for name in names]
    assert len(set(colours)) == len(names)
    assert plots.color_for("Adam (η=0.01)") == plots.color_for("adam")
    assert plots.color_for("my run") == plots.color_for("my run")
    assert plots.color_for("my run") not in colours


# The effective learning rate traced from the optimizer's slots.

SIGMOID_X = np.array([0.5, 2.5])
SIGMOID_Y = np.array([0.2, 0.9])


def sigmoid_gradient(w: float, b: float) -> np.ndarray:
    """∇ of ½ Σ (σ(w x + b) − y)², the lectures' hand-written loop."""
    f = 1.0 / (1.0 + np.exp(-(w * SIGMOID_X + b)))
    common = (f - SIGMOID_Y) * f * (1.0 - f)
    return np.array([np.sum(common * SIGMOID_X), np.sum(common)])


def test_adagrad_trace_is_eta_over_root_of_summed_squares(sigmoid):
    learning_rate, epsilon, steps = 0.5, 1e-8, 6
    trace = effective_learning_rate_trace(
        sigmoid, gdbench.optimizers.get("adagrad", learning_rate=learning_rate, epsilon=epsilon),
        epochs=steps,
    )
    params, accumulator, expected = np.array([-2.0, -2.0]), np.zeros(2), []
    for _ in range(steps):
        gradient = sigmoid_gradient(*params)
        accumulator += gradient**2
        expected.append(learning_rate / np.sqrt(accumulator + epsilon))
        params = params - learning_rate * gradient / np.sqrt(accumulator + epsilon)
    assert trace.shape == (steps, 2)
    np.testing.assert_allclose(trace, np.array(expected), rtol=1e-10)
    assert np.all(np.diff(trace, axis=0) <= 0)


def test_adam_and_adadelta_first_steps_by_hand(sigmoid):
    gradient = sigmoid_gradient(-2.0, -2.0)
    adam = effective_learning_rate_trace(
        sigmoid, gdbench.optimizers.get("adam", learning_rate=0.1), epochs=1)
    # At t = 1 the bias-corrected v̂ is g², so the rate is η/(|g| + ε), with η
    # held exactly (gdbench keeps a constant η in float64).
    np.testing.assert_allclose(adam[0], 0.1 / (np.abs(gradient) + 1e-8), rtol=1e-10)
    adadelta = effective_learning_rate_trace(
        sigmoid, gdbench.optimizers.get("adadelta", learning_rate=1.0, rho=0.95, epsilon=1e-6),
        epochs=1)
    # u_0 = 0, v_1 = (1 − ρ) g².
    np.testing.assert_allclose(adadelta[0], np.sqrt(1e-6) / np.sqrt(0.05 * gradient**2 + 1e-6),
                               rtol=1e-10)


def test_trace_follows_a_learning_rate_schedule(sigmoid):
    import keras

    schedule = keras.optimizers.schedules.InverseTimeDecay(0.5, decay_steps=1, decay_rate=1.0)
    trace = effective_learning_rate_trace(
        sigmoid, gdbench.optimizers.get("gd", learning_rate=schedule), epochs=4)
    # Step t runs with η(t − 1): 0.5/1, 0.5/2, 0.5/3, 0.5/4.
    np.testing.assert_allclose(trace[:, 0], 0.5 / np.arange(1, 5), rtol=1e-6)
    np.testing.assert_allclose(trace[:, 1], trace[:, 0])


@pytest.mark.parametrize("name", gdbench.optimizers.names())
def test_every_registered_optimizer_is_traced(sigmoid, name):
    assert name in EFFECTIVE_LEARNING_RATES
    trace = effective_learning_rate_trace(
        sigmoid, gdbench.optimizers.get(name, learning_rate=0.05), epochs=3, batch_size=1)
    assert trace.shape == (6, 2)
    assert np.all(np.isfinite(trace)) and np.all(trace > 0)


def test_trace_refuses_what_it_cannot_read(sigmoid):
    import keras

    with pytest.raises(ValueError, match="optimizer.*SGD.*supported: gd"):
        effective_learning_rate_trace(sigmoid, keras.optimizers.SGD(0.1), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        effective_learning_rate_trace(sigmoid, gdbench.optimizers.get("gd"), epochs=0)
    with pytest.raises(ValueError, match="task.*toy tasks"):
        effective_learning_rate_trace(gdbench.tasks.get("digits_mlp"),
                                      gdbench.optimizers.get("gd"), epochs=1)


def test_shades_keep_the_optimizers_colour_and_differ(tmp_path):
    shades = plots.shades_for("adam · η=0.01 · #3", 3)
    assert shades[0] == plots.color_for("adam")
    assert len(set(shades)) == 3
    with pytest.raises(ValueError, match="count"):
        plots.shades_for("adam", 0)


def test_given_colours_and_titles_are_drawn(tmp_path, monkeypatch):
    from matplotlib import colors as mcolors
    from matplotlib.figure import Figure

    drawn = {}
    save = Figure.savefig

    def savefig(figure, target, *args, **kwargs):
        drawn[target.name] = figure
        return save(figure, target, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    histories = {"gd · #1": {"loss": [1.0, 0.5]}, "gd · #2": {"loss": [1.0, 0.7]}}
    plots.plot_loss_curves(histories, tmp_path / "loss.png", title="gd: the best 2",
                           colors={"gd · #2": "#000000"})
    axes = drawn["loss.png"].axes[0]
    assert axes.get_title() == "gd: the best 2"
    assert [mcolors.to_hex(line.get_color()) for line in axes.get_lines()] == [
        plots.color_for("gd"), "#000000"]
    traces = {"gd · #1": np.full((4, 2), 0.1)}
    plots.plot_effective_learning_rates(traces, ["w", "b"], tmp_path / "rates.png",
                                        title="rates", colors={"gd · #1": "#123456"})
    figure = drawn["rates.png"]
    assert figure.get_suptitle() == "rates"
    assert mcolors.to_hex(figure.axes[0].get_lines()[0].get_color()) == "#123456"
    with pytest.raises(ValueError, match="colors"):
        plots.plot_loss_curves(histories, tmp_path / "bad.png", colors={"gd · #1": "nocolour"})


def test_the_surface_window_is_the_tasks_own_widened_to_show_every_path_whole():
    task = gdbench.tasks.get("sigmoid_neuron")
    (x_low, x_high), (y_low, y_high) = task.surface_bounds
    inside = np.array([[0.0, 0.0], [1.0, -1.0]])
    assert plots.surface_window(task, {"inside": inside}) == task.surface_bounds
    overshoot = np.array([[-2.0, -2.0], [x_high + 2.2, -1.0], [1.0, y_low - 3.0], [np.nan, 0.0]])
    (left, right), (bottom, top) = plots.surface_window(task, {"in": inside, "out": overshoot})
    assert (left, top) == (x_low, y_high)
    assert right > x_high + 2.2 and bottom < y_low - 3.0
