"""Every claim of the lectures, checked on gdbench's output and on the lectures' own loops.

Each test reads its spec in studies/lectures/ (task, epochs, batch size and
every optimizer's fixed keywords), trains each optimizer with gdbench
(``Task.fit``), asserts the claim on that output, and asserts that the
lectures' numpy loops (tests/lectures_reference.py, which import nothing of
gdbench) give the same paths and the same numbers.
"""

from __future__ import annotations

from typing import Any

import lectures_reference as lectures
import numpy as np
import pytest
from spec_files import LECTURES, Study, studies

import gdbench.optimizers
import gdbench.schedules
import gdbench.tasks
from gdbench.tasks import search
from gdbench.tasks.trace import effective_learning_rate_trace

#: The optimum of the sigmoid neuron's two points: σ(0.5 w + b) = 0.2, σ(2.5 w + b) = 0.9.
NEURON_OPTIMUM_W = (np.log(9.0) + np.log(4.0)) / 2.0


def _spec(stem: str) -> Study:
    (study,) = studies(LECTURES / f"{stem}.toml")
    return study


def _fit(study: Study) -> dict[str, gdbench.tasks.FitResult]:
    """Every optimizer of the spec trained by gdbench, by label."""
    task = study.task
    return {entry.label: task.fit(study.build(entry.label), epochs=study.epochs,
                                  batch_size=study.batch_size)
            for entry in study.optimizers}


def _numpy_loop(name: str, keywords: dict[str, Any]):
    """The lectures' loop for a gdbench optimizer name, with DESIGN.md's defaults."""
    k = {"epsilon": {"adagrad": 1e-8, "rmsprop": 1e-8, "adadelta": 1e-6}.get(name, 1e-8),
         **keywords}
    loops = {
        "gd": lambda: (lectures.gd, {"eta": k["learning_rate"]}),
        "momentum": lambda: (lectures.momentum, {"eta": k["learning_rate"],
                                                 "gamma": k.get("momentum", 0.9)}),
        "nesterov": lambda: (lectures.nag, {"eta": k["learning_rate"],
                                            "gamma": k.get("momentum", 0.9)}),
        "adagrad": lambda: (lectures.adagrad, {"eta": k["learning_rate"], "eps": k["epsilon"]}),
        "rmsprop": lambda: (lectures.rmsprop, {"eta": k["learning_rate"],
                                               "beta": k.get("rho", 0.9), "eps": k["epsilon"]}),
        "adadelta": lambda: (lectures.adadelta, {"eta": k.get("learning_rate", 1.0),
                                                 "beta": k.get("rho", 0.95), "eps": k["epsilon"]}),
        "adam": lambda: (lectures.adam, {
            "eta": k["learning_rate"], "beta1": k.get("beta_1", 0.9),
            "beta2": k.get("beta_2", 0.999), "eps": k["epsilon"],
            "bias_correction": k.get("bias_correction", True)}),
        "adamax": lambda: (lectures.adamax, {
            "eta": k["learning_rate"], "beta1": k.get("beta_1", 0.9),
            "beta2": k.get("beta_2", 0.999), "eps": k["epsilon"]}),
    }
    return loops[name]()


def _numpy(study: Study) -> dict[str, np.ndarray]:
    """Every optimizer of the spec run through the lectures' numpy loop, by label: its path."""
    task = study.task
    xs, ys = task.inputs, task.targets
    size = len(ys)
    batch_size = study.batch_size or size
    assert batch_size == size or not task.options["shuffle"], "the loops read rows in order"
    batches = lectures.in_order_batches(size, batch_size, study.epochs)
    paths = {}
    for entry in study.optimizers:
        loop, keywords = _numpy_loop(entry.name, entry.keywords)
        paths[entry.label] = loop(
            task.initial_parameters(), batches,
            lambda p, rows: lectures.gradient(p, rows, xs, ys), **keywords)
    return paths


def _losses(study: Study, path: np.ndarray) -> np.ndarray:
    """The loss on all data at every row of a path, by the lectures' formula."""
    task = study.task
    return lectures.loss(path, task.inputs, task.targets)


def _same_paths(fitted: dict[str, gdbench.tasks.FitResult], paths: dict[str, np.ndarray],
                atol: float = 1e-12, steps: int | None = None) -> None:
    """gdbench's paths are the lectures' (over the first ``steps`` steps when given)."""
    for label, result in fitted.items():
        np.testing.assert_allclose(result.trajectory[:steps], paths[label][:steps], rtol=0,
                                   atol=atol, err_msg=label)


def _first_epoch_below(losses: np.ndarray, threshold: float) -> int:
    """The first epoch (1-based) whose loss is below ``threshold``."""
    below = np.flatnonzero(np.asarray(losses) < threshold)
    return int(below[0]) + 1


def test_gd_is_stuck_on_the_plateau_where_momentum_and_nag_move_on():
    study = _spec("plateau")
    fitted, paths = _fit(study), _numpy(study)
    _same_paths(fitted, paths)
    for losses in ({label: r.history["loss"] for label, r in fitted.items()},
                   {label: _losses(study, path)[1:] for label, path in paths.items()}):
        # The start's loss is 0.416: leaving the plateau is getting below 0.4.
        off_plateau = {label: _first_epoch_below(values, 0.4) for label, values in losses.items()}
        assert off_plateau == {"gd": 64, "momentum": 16, "nesterov": 15}
        in_valley = {label: _first_epoch_below(values, 1e-3) for label, values in losses.items()}
        assert in_valley == {"gd": 183, "momentum": 148, "nesterov": 31}


def _excursions(path: np.ndarray) -> list[float]:
    """How far past the optimum's w each swing of the path goes, signed, in order."""
    offset = path[:, 0] - NEURON_OPTIMUM_W
    turns = np.flatnonzero(np.sign(offset[1:]) != np.sign(offset[:-1])) + 1
    return [float(swing[np.argmax(np.abs(swing))]) for swing in np.split(offset, turns)]


def test_momentum_overshoots_and_nag_oscillates_less():
    study = _spec("momentum_overshoot")
    fitted, paths = _fit(study), _numpy(study)
    _same_paths(fitted, paths)
    for source in ({label: r.trajectory for label, r in fitted.items()}, paths):
        momentum, nag = _excursions(source["momentum"]), _excursions(source["nesterov"])
        # Both come from 3.79 short of it; momentum swings 1.59 past, NAG 0.87.
        np.testing.assert_allclose(momentum[:3], [-3.792, 1.593, -0.054], atol=1e-3)
        np.testing.assert_allclose(nag[:3], [-3.792, 0.868, -0.037], atol=1e-3)
        losses = {label: _losses(study, path) for label, path in source.items()}
        rises = {label: int(np.count_nonzero(np.diff(values) > 1e-4))
                 for label, values in losses.items()}
        assert rises == {"momentum": 20, "nesterov": 12}
        settled = {label: int(np.flatnonzero(values >= 1e-3)[-1]) + 1
                   for label, values in losses.items()}
        assert settled == {"momentum": 148, "nesterov": 83}


def _along_w(path: np.ndarray, steps: int) -> float:
    """|Δw| / |Δb| over the first ``steps`` steps: 0 moves along b only, 1 along the diagonal."""
    moved = np.abs(path[steps] - path[0])
    return float(moved[0] / moved[1])


def test_adagrad_moves_the_sparse_weight_where_gd_momentum_and_nag_move_the_bias():
    study = _spec("adagrad_sparse")
    fitted, paths = _fit(study), _numpy(study)
    _same_paths(fitted, paths, atol=1e-10)
    task = study.task
    # w's gradient comes from the 100 rows with x ≠ 0 only: a thirtieth of b's.
    gradient = lectures.gradient(task.initial_parameters(), np.arange(500), task.inputs,
                                 task.targets)
    assert 0.02 < abs(gradient[0] / gradient[1]) < 0.05
    for source in ({label: r.trajectory for label, r in fitted.items()}, paths):
        ratios = {label: _along_w(path, 10) for label, path in source.items()}
        assert max(ratios["gd"], ratios["momentum"], ratios["nesterov"]) < 0.2
        assert ratios["adagrad"] > 5 * max(ratios["gd"], ratios["momentum"], ratios["nesterov"])
    # Adagrad's rate for w, which sees few and small gradients, stays above b's.
    rates = effective_learning_rate_trace(task, study.build("adagrad"), epochs=50)
    assert np.all(rates[:, 0] > 2.5 * rates[:, 1])


def test_rmsprop_oscillates_at_eta_0_1_and_not_at_0_05():
    study = _spec("rmsprop_oscillation")
    fitted, paths = _fit(study), _numpy(study)
    _same_paths(fitted, paths, atol=1e-10)
    for losses in ({label: np.array(r.history["loss"]) for label, r in fitted.items()},
                   {label: _losses(study, path)[1:] for label, path in paths.items()}):
        rises = {label: int(np.count_nonzero(np.diff(values) > 0))
                 for label, values in losses.items()}
        assert rises == {"rmsprop_eta_0_1": 21, "rmsprop_eta_0_05": 0}


def test_without_bias_correction_adams_first_steps_are_larger():
    study = _spec("adam_bias_correction")
    fitted, paths = _fit(study), _numpy(study)
    _same_paths(fitted, paths)
    beta_1 = study.optimizer("adam").keywords["beta_1"]
    beta_2 = study.optimizer("adam").keywords["beta_2"]
    for source in ({label: r.trajectory for label, r in fitted.items()}, paths):
        first = {label: np.abs(path[1] - path[0]) for label, path in source.items()}
        np.testing.assert_allclose(first["adam"], [0.100, 0.100], atol=1e-6)
        np.testing.assert_allclose(first["adam_no_bc"], [0.316, 0.316], atol=1e-3)
        # The factor of Adam's docstring, (1 − β1ᵗ)/√(1 − β2ᵗ) at t = 1, ε aside.
        np.testing.assert_allclose(first["adam_no_bc"] / first["adam"],
                                   (1 - beta_1) / np.sqrt(1 - beta_2), rtol=1e-4)
        steps = {label: np.linalg.norm(np.diff(path[:11], axis=0), axis=1)
                 for label, path in source.items()}
        assert np.all(steps["adam_no_bc"] > 1.5 * steps["adam"])


def test_stochastic_steps_are_noisy_and_mini_batches_average_the_noise():
    path = LECTURES / "batch_sizes.toml"
    by_name = {study.table["name"]: study for study in studies(path)}
    stats = {}
    for name, study in by_name.items():
        (result,) = _fit(study).values()
        (expected,) = _numpy(study).values()
        np.testing.assert_allclose(result.trajectory, expected, rtol=0, atol=1e-10)
        for source, trajectory in (("gdbench", result.trajectory), ("numpy", expected)):
            losses = _losses(study, trajectory)
            length = float(np.sum(np.linalg.norm(np.diff(trajectory, axis=0), axis=1)))
            stats[name, source] = (float(np.mean(np.diff(losses) > 0)), length)
        assert result.steps_per_epoch == {"lectures_batch": 1, "lectures_minibatch": 10,
                                          "lectures_stochastic": 500}[name]
    for source in ("gdbench", "numpy"):
        (batch_rises, batch_length), (mini_rises, mini_length), (sgd_rises, sgd_length) = (
            stats[name, source] for name in by_name)
        assert batch_rises == 0.0
        assert 0.05 < mini_rises < 0.1
        assert 0.3 < sgd_rises < 0.4
        assert sgd_length > 1.8 * batch_length and mini_length < 1.2 * batch_length


def test_adadelta_speeds_up_by_itself_where_rmsprop_keeps_its_first_step():
    study = _spec("adadelta_vs_rmsprop")
    fitted, paths = _fit(study), _numpy(study)
    # RMSProp ends oscillating across the valley, where a difference in the
    # last bit of a 500-term sum grows step by step: the claims hold for
    # both, the paths agree up to there.
    _same_paths(fitted, paths, atol=1e-10, steps=200)
    for source in ({label: r.trajectory for label, r in fitted.items()}, paths):
        steps = {label: np.linalg.norm(np.diff(path, axis=0), axis=1)
                 for label, path in source.items()}
        assert np.argmax(steps["rmsprop"]) == 0
        assert steps["adadelta"].max() > 30 * steps["adadelta"][0]
        assert steps["adadelta"][0] < 0.2 * steps["rmsprop"][0]
        losses = {label: _losses(study, path)[-1] for label, path in source.items()}
        assert losses["adadelta"] < 0.25 * losses["rmsprop"]


def test_adamax_steps_never_exceed_eta_where_adams_do_on_sparse_data():
    study = _spec("adamax_vs_adam")
    fitted, paths = _fit(study), _numpy(study)
    _same_paths(fitted, paths, atol=1e-10)
    eta = study.optimizer("adam").keywords["learning_rate"]
    task = study.task
    # One point per step: w's gradient is exactly 0 on the 400 rows with x = 0.
    assert np.count_nonzero(task.inputs == 0) == 400
    for source in ({label: r.trajectory for label, r in fitted.items()}, paths):
        steps = {label: np.abs(np.diff(path, axis=0)) / eta for label, path in source.items()}
        assert steps["adamax"].max() <= 1.0 + 1e-9
        assert 1.7 < steps["adam"][:, 0].max() < (1 - 0.9) / np.sqrt(1 - 0.999)


def _keras_cosine(eta: float, decay_steps: float, step: np.ndarray) -> np.ndarray:
    return eta * 0.5 * (1 + np.cos(np.pi * np.minimum(step, decay_steps) / decay_steps))


def _schedule_rates(name: str, eta: float, table: dict[str, Any], step: np.ndarray) -> np.ndarray:
    """η at each 0-based step, by DESIGN.md's formulas, η on the spec's convention."""
    if name == "step_decay":
        return eta * table["drop"] ** np.floor(step / table["steps_per_drop"])
    if name == "exponential":
        return eta * table["decay_rate"] ** (step / table["decay_steps"])
    if name == "inverse_time":
        return eta / (1 + table["decay_rate"] * step / table["decay_steps"])
    if name == "inverse_sqrt":
        return eta / np.sqrt(1 + step / table["decay_steps"])
    if name == "cyclical":
        base, size = eta * table["base_fraction"], table["step_size"]
        cycle = np.floor(1 + step / (2 * size))
        x = np.abs(step / size - 2 * cycle + 1)
        return base + (eta - base) * np.maximum(0.0, 1 - x)
    if name == "cosine_restarts":
        low, period = eta * table["minimal_fraction"], table["period"]
        return low + (eta - low) / 2 * (1 + np.cos(np.pi * (step % (period + 1)) / period))
    if name == "warmup":
        target = _keras_cosine(eta, table["target"]["decay_steps"], step)
        ramp = step / table["warmup_steps"] * _keras_cosine(
            eta, table["target"]["decay_steps"], table["warmup_steps"])
        return np.where(step < table["warmup_steps"], ramp, target)
    raise AssertionError(name)


def _spec_schedule(name: str, eta: float, table: dict[str, Any]) -> Any:
    """The schedule a spec's table asks for, by the spec's documented conventions."""
    keywords = {key: value for key, value in table.items() if key not in ("name", "label")}
    if name == "cyclical":
        return gdbench.schedules.get(
            name, maximal_learning_rate=eta, step_size=keywords["step_size"],
            initial_learning_rate=eta * keywords["base_fraction"])
    if name == "cosine_restarts":
        return gdbench.schedules.get(
            name, maximal_learning_rate=eta, period=keywords["period"],
            minimal_learning_rate=eta * keywords["minimal_fraction"])
    if name == "warmup":
        target = keywords["target"]
        return gdbench.schedules.get(
            name, warmup_steps=keywords["warmup_steps"],
            target=gdbench.schedules.get(target["name"], initial_learning_rate=eta,
                                         decay_steps=target["decay_steps"]))
    return gdbench.schedules.get(name, initial_learning_rate=eta, **keywords)


def test_each_schedule_sets_eta_step_by_step_as_its_formula_says():
    study = _spec("schedules")
    task = study.task
    (entry,) = study.optimizers
    eta = entry.keywords["learning_rate"]
    steps = np.arange(study.epochs + 1, dtype=float)
    rates = {}
    for table in study.table["schedules"]:
        name = table["name"]
        optimizer = gdbench.optimizers.get(
            entry.name, learning_rate=_spec_schedule(name, eta, table))
        result = task.fit(optimizer, epochs=study.epochs)
        expected = _schedule_rates(name, eta, table, steps)
        # Keras evaluates a schedule in float32 (floatx): agreement to ~1e-7.
        np.testing.assert_allclose(result.history["learning_rate"], expected[1:], rtol=1e-6,
                                   err_msg=name)
        path = lectures.gd_scheduled(task.initial_parameters(),
                                     lectures.full_batches(2, study.epochs), lectures.gradient,
                                     etas=expected)
        np.testing.assert_allclose(result.trajectory, path, rtol=1e-5, atol=1e-7, err_msg=name)
        rates[name] = expected
    assert np.all(rates["step_decay"][[0, 49, 50, 100, 150]] == [1.0, 1.0, 0.5, 0.25, 0.125])
    assert rates["exponential"][200] == pytest.approx(0.1)
    assert rates["inverse_time"][20] == pytest.approx(0.5)
    assert rates["inverse_sqrt"][30] == pytest.approx(0.5)
    # The cycles come back to the peak; the decays never do.
    np.testing.assert_allclose(rates["cyclical"][[0, 25, 50, 75]], [0.1, 1.0, 0.1, 1.0])
    np.testing.assert_allclose(rates["cosine_restarts"][[0, 50, 51]], [1.0, 0.01, 1.0])
    assert rates["warmup"][0] == 0.0 and rates["warmup"][20] == rates["warmup"].max()


def _neuron_loss_on(params: np.ndarray, rows: np.ndarray) -> float:
    return float(lectures.loss(params, lectures.XS[rows], lectures.YS[rows]))


def test_line_search_keeps_the_best_eta_of_its_grid_at_every_step():
    study = _spec("line_search")
    task = study.task
    etas = list(study.table["search"]["learning_rate"]["choices"])
    result = search.line_search(task, epochs=study.epochs, learning_rates=etas)
    batches = lectures.full_batches(2, study.epochs)
    path, chosen = lectures.line_search(task.initial_parameters(), batches, lectures.gradient,
                                        _neuron_loss_on, etas=etas)
    np.testing.assert_allclose(result.trajectory, path, rtol=0, atol=1e-12)
    assert result.history["learning_rate"] == chosen
    # The largest η on the plateau, a smaller one where the valley bends.
    assert chosen[0] == 10.0 and set(chosen) == {5.0, 10.0}
    fixed = {eta: _losses(study, lectures.gd(task.initial_parameters(), batches,
                                             lectures.gradient, eta=eta))
             for eta in etas}
    line = _losses(study, path)
    # No step of the line search is worse than one GD step of any η of the grid from
    # the same point, and it ends ahead of every fixed η but the largest.
    for eta in etas:
        one_step = lectures.loss(path[:-1] - eta * np.array(
            [lectures.gradient(p, np.arange(2)) for p in path[:-1]]))
        assert np.all(line[1:] <= one_step + 1e-15)
    assert all(line[-1] < fixed[eta][-1] for eta in etas if eta < 10.0)
    assert line[-1] < 1e-10


def test_random_search_goes_downhill_without_a_gradient():
    study = _spec("line_search")
    task = study.task
    alpha, delta, seed = 1.0, 0.5, 0
    result = search.random_search(task, epochs=study.epochs, alpha=alpha, delta=delta, seed=seed)
    batches = lectures.full_batches(2, study.epochs)
    path = lectures.random_search(task.initial_parameters(), batches, _neuron_loss_on,
                                  alpha=alpha, delta=delta, seed=seed)
    np.testing.assert_allclose(result.trajectory, path, rtol=0, atol=1e-12)
    losses = _losses(study, path)
    # On average a gradient step of η ≈ 2αδ² = 0.5: it keeps pace with GD at that η.
    gd = _losses(study, lectures.gd(task.initial_parameters(), batches, lectures.gradient,
                                    eta=2 * alpha * delta ** 2))
    assert losses[-1] < losses[0] and losses[-1] < gd[-1]
    np.testing.assert_allclose(result.history["loss"], losses[1:], rtol=0, atol=1e-12)
