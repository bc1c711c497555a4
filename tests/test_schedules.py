"""gdbench.schedules against independent references, Keras's own classes, and Keras's machinery.

Every generic test is parametrized over ``CASES``: a new schedule is a few
rows there (and a reference in ``reference_schedules``), and every test then
checks it.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from typing import Any

import keras
import numpy as np
import pytest
from backends import BACKEND, xla_compiled
from keras import ops
from reference_schedules import REFERENCES, evaluate

import gdbench.optimizers
import gdbench.schedules

STEPS = np.arange(301)

# name, keywords. A warm-up target is a rate or a (name, keywords) pair. The
# parameters put cycle ends, drops, boundaries and warm-up ends inside 0..300.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("constant", {"learning_rate": 0.05}),
    ("constant", {"learning_rate": 1.0}),
    ("step_decay", {"initial_learning_rate": 0.1, "drop": 0.5, "steps_per_drop": 25}),
    ("step_decay", {"initial_learning_rate": 1.0, "drop": 0.1, "steps_per_drop": 100}),
    ("step_decay", {"initial_learning_rate": 0.3, "drop": 1.0, "steps_per_drop": 7}),
    ("exponential", {"initial_learning_rate": 0.1, "decay_rate": 0.96, "decay_steps": 10}),
    ("exponential", {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 30, "staircase": True}),
    ("exponential", {"initial_learning_rate": 2.0, "decay_rate": 1.05, "decay_steps": 100}),
    ("exponential", {"initial_learning_rate": 0.01, "decay_rate": 0.9, "decay_steps": 12.5, "staircase": True}),
    ("inverse_time", {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10}),
    ("inverse_time", {"initial_learning_rate": 1.0, "decay_rate": 2.0, "decay_steps": 25, "staircase": True}),
    ("inverse_time", {"initial_learning_rate": 0.5, "decay_rate": 0.1, "decay_steps": 7.5}),
    ("inverse_sqrt", {"initial_learning_rate": 0.1, "decay_steps": 10}),
    ("inverse_sqrt", {"initial_learning_rate": 1.0, "decay_steps": 1}),
    ("inverse_sqrt", {"initial_learning_rate": 0.5, "decay_steps": 150.5}),
    ("polynomial", {"initial_learning_rate": 0.1, "decay_steps": 100}),
    ("polynomial", {"initial_learning_rate": 1.0, "decay_steps": 60, "end_learning_rate": 0.01,
                    "power": 2.0, "cycle": True}),
    ("polynomial", {"initial_learning_rate": 0.5, "decay_steps": 250, "end_learning_rate": 0.0,
                    "power": 0.5}),
    ("polynomial", {"initial_learning_rate": 0.2, "decay_steps": 45, "end_learning_rate": 0.05,
                    "power": 3.0, "cycle": True}),
    ("piecewise_constant", {"boundaries": [50, 150], "values": [0.1, 0.05, 0.01]}),
    ("piecewise_constant", {"boundaries": [0, 100, 200, 250], "values": [1.0, 0.5, 0.25, 0.125, 0.0625]}),
    ("piecewise_constant", {"boundaries": [99.5], "values": [0.2, 0.3]}),
    ("cyclical", {"initial_learning_rate": 0.001, "maximal_learning_rate": 0.1, "step_size": 20}),
    ("cyclical", {"initial_learning_rate": 0.01, "maximal_learning_rate": 0.1, "step_size": 25,
                  "mode": "triangular2"}),
    ("cyclical", {"initial_learning_rate": 0.01, "maximal_learning_rate": 0.5, "step_size": 30,
                  "mode": "exp_range", "gamma": 0.99}),
    ("cyclical", {"initial_learning_rate": 0.05, "maximal_learning_rate": 0.05, "step_size": 10}),
    ("cyclical", {"initial_learning_rate": 0.001, "maximal_learning_rate": 0.006, "step_size": 1,
                  "mode": "triangular2"}),
    ("cosine", {"initial_learning_rate": 0.1, "decay_steps": 100}),
    ("cosine", {"initial_learning_rate": 1.0, "decay_steps": 250, "alpha": 0.1}),
    ("cosine", {"initial_learning_rate": 0.5, "decay_steps": 37.5, "alpha": 1.0}),
    ("cosine_restarts", {"maximal_learning_rate": 0.1, "minimal_learning_rate": 0.001, "period": 50}),
    ("cosine_restarts", {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.0, "period": 1}),
    ("cosine_restarts", {"maximal_learning_rate": 0.3, "minimal_learning_rate": 0.01, "period": 99}),
    ("warmup", {"target": ("cosine", {"initial_learning_rate": 0.1, "decay_steps": 200}),
                "warmup_steps": 20}),
    ("warmup", {"target": 0.05, "warmup_steps": 10, "initial_learning_rate": 0.001}),
    ("warmup", {"target": ("cyclical", {"initial_learning_rate": 0.01, "maximal_learning_rate": 0.1,
                                        "step_size": 40, "mode": "triangular2"}),
                "warmup_steps": 25, "initial_learning_rate": 0.01}),
    ("warmup", {"target": ("step_decay", {"initial_learning_rate": 0.1, "drop": 0.5,
                                          "steps_per_drop": 30}),
                "warmup_steps": 0}),
    ("warmup", {"target": ("warmup", {"target": ("polynomial", {"initial_learning_rate": 0.1,
                                                                "decay_steps": 150}),
                                      "warmup_steps": 50}),
                "warmup_steps": 1, "initial_learning_rate": 0.2}),
]

NAMES = gdbench.schedules.names()

# The step boundaries of each case's own structure, 0-based, and a step either side.
BOUNDARY_KEYWORDS = ("steps_per_drop", "decay_steps", "step_size", "period", "warmup_steps")

KERAS_CLASSES = {
    "exponential": keras.optimizers.schedules.ExponentialDecay,
    "inverse_time": keras.optimizers.schedules.InverseTimeDecay,
    "polynomial": keras.optimizers.schedules.PolynomialDecay,
    "piecewise_constant": keras.optimizers.schedules.PiecewiseConstantDecay,
    "cosine": keras.optimizers.schedules.CosineDecay,
}


# Under JAX, Keras computes a cosine in float32 whatever its argument's dtype
# (see gdbench.schedules.cosine): there, the schedules built on one are held to
# float32 accuracy in their float64 checks too.
COSINE_SCHEDULES = ("cosine", "cosine_restarts")


def uses_cosine(name: str, keywords: dict[str, Any]) -> bool:
    target = keywords.get("target")
    return name in COSINE_SCHEDULES or (isinstance(target, tuple) and uses_cosine(*target))


def float64_tolerance(name: str, keywords: dict[str, Any], rtol: float, atol: float = 0.0) -> dict:
    """The tolerance of a float64 check: as given, or float32's where the backend's cosine is."""
    if BACKEND == "jax" and uses_cosine(name, keywords):
        return {"rtol": 1e-6, "atol": 1e-7}
    return {"rtol": rtol, "atol": atol}


def cases_of(name: str) -> list[dict[str, Any]]:
    return [keywords for case_name, keywords in CASES if case_name == name]


def build(name: str, keywords: dict[str, Any]) -> keras.optimizers.schedules.LearningRateSchedule:
    """The gdbench schedule of a case, its warm-up target built first."""
    keywords = dict(keywords)
    if isinstance(keywords.get("target"), tuple):
        keywords["target"] = build(*keywords["target"])
    return gdbench.schedules.get(name, **keywords)


def reference(name: str, keywords: dict[str, Any]) -> Any:
    """The reference of a case as a function of one integer step."""
    keywords = dict(keywords)
    if isinstance(keywords.get("target"), tuple):
        keywords["target"] = reference(*keywords["target"])
    return functools.partial(REFERENCES[name], **keywords)


def boundary_steps(keywords: dict[str, Any]) -> list[int]:
    """Multiples of the case's step scales (and their neighbours) up to 300."""
    centres = [round(boundary) for boundary in keywords.get("boundaries", [])]
    for key in BOUNDARY_KEYWORDS:
        scale = keywords.get(key)
        if scale:
            centres += [round(multiple * scale) for multiple in range(1, 4)]
    steps = {0, 1, 299, 300}
    for centre in centres:
        steps.update(s for s in (centre - 1, centre, centre + 1) if 0 <= s <= 300)
    return sorted(steps)


def as_float64(value: Any) -> Any:
    """Numbers (and lists of them) as np.float64; flags unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        return [np.float64(v) for v in value]
    return np.float64(value)


# -- the formulas -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_schedule_matches_reference(name):
    for keywords in cases_of(name):
        schedule = build(name, keywords)
        expected_at = reference(name, keywords)
        expected = evaluate(expected_at, STEPS)
        from_float64 = schedule(ops.convert_to_tensor(STEPS, "float64"))
        assert keras.backend.standardize_dtype(from_float64.dtype) == "float64"
        exact = float64_tolerance(name, keywords, rtol=1e-12)
        np.testing.assert_allclose(
            ops.convert_to_numpy(from_float64), expected, **exact, err_msg=str(keywords)
        )
        # Scalar steps, as an optimizer passes them, at the case's own boundaries.
        for step in boundary_steps(keywords):
            actual = float(schedule(ops.convert_to_tensor(step, "float64")))
            assert actual == pytest.approx(expected_at(step), rel=exact["rtol"], abs=exact["atol"]), (
                f"{keywords}, step {step}"
            )
        # float32 errors are judged against the schedule's own scale, its largest rate.
        tolerance = {"rtol": 1e-5, "atol": 1e-6 * np.max(np.abs(expected)), "err_msg": str(keywords)}
        from_float32 = schedule(ops.convert_to_tensor(STEPS, "float32"))
        assert keras.backend.standardize_dtype(from_float32.dtype) == "float32"
        np.testing.assert_allclose(ops.convert_to_numpy(from_float32), expected, **tolerance)
        # An integer step, as the optimizer's counter, is evaluated in float64: exact.
        from_int64 = schedule(ops.convert_to_tensor(STEPS, "int64"))
        assert keras.backend.standardize_dtype(from_int64.dtype) == "float64"
        np.testing.assert_allclose(
            ops.convert_to_numpy(from_int64), expected, **exact, err_msg=str(keywords)
        )


@pytest.mark.skipif(
    BACKEND == "torch",
    reason="Keras's own schedules compute a float64 step in float32 under PyTorch, and "
    "its PiecewiseConstantDecay takes scalar steps only there",
)
@pytest.mark.parametrize("name", list(KERAS_CLASSES))
def test_schedule_matches_keras_class(name):
    steps = ops.convert_to_tensor(STEPS, "float64")
    for keywords in cases_of(name):
        schedule = build(name, keywords)
        # Every keyword as np.float64, defaults included: Keras computes in the dtype of its
        # initial rate and would round a Python-float default through float32.
        keras_keywords = {key: as_float64(value) for key, value in schedule.get_config().items()}
        expected = KERAS_CLASSES[name](**keras_keywords)(steps)
        assert keras.backend.standardize_dtype(expected.dtype) == "float64"
        np.testing.assert_allclose(
            ops.convert_to_numpy(schedule(steps)), ops.convert_to_numpy(expected),
            **float64_tolerance(name, keywords, rtol=1e-12), err_msg=str(keywords),
        )


@pytest.mark.parametrize("name", NAMES)
def test_xla_compiles_every_schedule(name):
    keywords = cases_of(name)[0]
    schedule = build(name, keywords)
    compiled = xla_compiled(schedule)
    expected_at = reference(name, keywords)
    # float32 errors are judged against the schedule's own scale, its largest rate.
    scale = float(np.max(evaluate(expected_at, STEPS)))
    exact = float64_tolerance(name, keywords, rtol=1e-12)
    for dtype, rtol, atol in (("float64", exact["rtol"], exact["atol"]), ("float32", 1e-5, 1e-6 * scale)):
        for step in (0, 17, 100, 250):
            value = compiled(ops.convert_to_tensor(step, dtype))
            assert keras.backend.standardize_dtype(value.dtype) == dtype
            assert float(value) == pytest.approx(expected_at(step), rel=rtol, abs=atol)
    iterations = keras.Variable(42, dtype="int64", trainable=False)
    assert float(compiled(iterations.value)) == pytest.approx(expected_at(42), rel=1e-5, abs=1e-6 * scale)


# -- pinned values: the references themselves, against hand computation --------------------


# name, keywords, step, the rate computed by hand.
PINNED: list[tuple[str, dict[str, Any], int, float]] = [
    ("constant", {"learning_rate": 0.3}, 123, 0.3),
    ("step_decay", {"initial_learning_rate": 0.1, "drop": 0.5, "steps_per_drop": 10}, 9, 0.1),
    ("step_decay", {"initial_learning_rate": 0.1, "drop": 0.5, "steps_per_drop": 10}, 10, 0.05),
    ("step_decay", {"initial_learning_rate": 0.1, "drop": 0.5, "steps_per_drop": 10}, 25, 0.025),
    ("exponential", {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10}, 10, 0.05),
    ("exponential", {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10}, 5,
     0.1 / math.sqrt(2)),
    ("exponential", {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10,
                     "staircase": True}, 19, 0.05),
    ("inverse_time", {"initial_learning_rate": 1.0, "decay_rate": 1.0, "decay_steps": 10}, 10, 0.5),
    ("inverse_time", {"initial_learning_rate": 1.0, "decay_rate": 1.0, "decay_steps": 10,
                      "staircase": True}, 19, 0.5),
    ("inverse_sqrt", {"initial_learning_rate": 1.0, "decay_steps": 10}, 30, 0.5),
    ("polynomial", {"initial_learning_rate": 1.0, "decay_steps": 10, "end_learning_rate": 0.0}, 5, 0.5),
    ("polynomial", {"initial_learning_rate": 1.0, "decay_steps": 10, "end_learning_rate": 0.0}, 20, 0.0),
    ("polynomial", {"initial_learning_rate": 1.0, "decay_steps": 10, "end_learning_rate": 0.0,
                    "cycle": True}, 15, 0.25),
    ("piecewise_constant", {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 10, 1.0),
    ("piecewise_constant", {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 11, 0.5),
    ("piecewise_constant", {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 20, 0.5),
    ("piecewise_constant", {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 21, 0.1),
    # Triangular: base at 0, the maximum at step = step_size, base again at 2 step_size.
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10}, 0, 0.1),
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10}, 5, 0.55),
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10}, 10, 1.0),
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10}, 20, 0.1),
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10}, 30, 1.0),
    # Triangular2: the second cycle's peak is half as high, the third a quarter.
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10,
                  "mode": "triangular2"}, 30, 0.55),
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10,
                  "mode": "triangular2"}, 50, 0.325),
    ("cyclical", {"initial_learning_rate": 0.1, "maximal_learning_rate": 1.0, "step_size": 10,
                  "mode": "exp_range", "gamma": 0.99}, 10, 0.1 + 0.9 * 0.99 ** 10),
    ("cosine", {"initial_learning_rate": 1.0, "decay_steps": 10, "alpha": 0.1}, 5, 0.55),
    ("cosine", {"initial_learning_rate": 1.0, "decay_steps": 10, "alpha": 0.1}, 10, 0.1),
    ("cosine", {"initial_learning_rate": 1.0, "decay_steps": 10, "alpha": 0.1}, 50, 0.1),
    # Cosine restarts: η_max at 0, η_min at T, η_max again at T + 1.
    ("cosine_restarts", {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.1, "period": 10}, 0, 1.0),
    ("cosine_restarts", {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.1, "period": 10}, 5, 0.55),
    ("cosine_restarts", {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.1, "period": 10}, 10, 0.1),
    ("cosine_restarts", {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.1, "period": 10}, 11, 1.0),
    ("cosine_restarts", {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.1, "period": 10}, 21, 0.1),
    ("warmup", {"target": 1.0, "warmup_steps": 10}, 0, 0.0),
    ("warmup", {"target": 1.0, "warmup_steps": 10}, 5, 0.5),
    ("warmup", {"target": 1.0, "warmup_steps": 10}, 10, 1.0),
    ("warmup", {"target": ("step_decay", {"initial_learning_rate": 1.0, "drop": 0.5,
                                          "steps_per_drop": 10}),
                "warmup_steps": 10, "initial_learning_rate": 0.1}, 5, 0.3),
]


@pytest.mark.parametrize("name", NAMES)
def test_reference_and_schedule_pinned_by_hand(name):
    pinned = [(keywords, step, expected) for case, keywords, step, expected in PINNED if case == name]
    assert pinned, f"no hand-computed value for {name}"
    for keywords, step, expected in pinned:
        context = f"{keywords}, step {step}"
        assert reference(name, keywords)(step) == pytest.approx(expected, rel=1e-14, abs=1e-15), context
        actual = float(build(name, keywords)(ops.convert_to_tensor(step, "float64")))
        exact = float64_tolerance(name, keywords, rtol=1e-14, atol=1e-15)
        assert actual == pytest.approx(expected, rel=exact["rtol"], abs=exact["atol"]), context


# -- broadcasting: K trials as one [K, 1] call ---------------------------------------------

# name → K keyword sets differing in their numbers only; a target is (name, keywords).
POPULATIONS: dict[str, list[dict[str, Any]]] = {
    "constant": [{"learning_rate": r} for r in (0.1, 0.02, 3.0)],
    "step_decay": [
        {"initial_learning_rate": 0.1, "drop": 0.5, "steps_per_drop": 10},
        {"initial_learning_rate": 0.2, "drop": 0.9, "steps_per_drop": 3},
        {"initial_learning_rate": 1.0, "drop": 0.1, "steps_per_drop": 50},
    ],
    "exponential": [
        {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10, "staircase": True},
        {"initial_learning_rate": 0.2, "decay_rate": 0.9, "decay_steps": 3, "staircase": True},
        {"initial_learning_rate": 1.0, "decay_rate": 0.1, "decay_steps": 50, "staircase": True},
    ],
    "inverse_time": [
        {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10},
        {"initial_learning_rate": 0.2, "decay_rate": 2.0, "decay_steps": 3},
        {"initial_learning_rate": 1.0, "decay_rate": 0.1, "decay_steps": 50},
    ],
    "inverse_sqrt": [
        {"initial_learning_rate": 0.1, "decay_steps": 10},
        {"initial_learning_rate": 0.2, "decay_steps": 3},
        {"initial_learning_rate": 1.0, "decay_steps": 50},
    ],
    "polynomial": [
        {"initial_learning_rate": 0.1, "decay_steps": 10, "end_learning_rate": 0.0, "power": 1.0,
         "cycle": True},
        {"initial_learning_rate": 0.2, "decay_steps": 30, "end_learning_rate": 0.01, "power": 2.0,
         "cycle": True},
        {"initial_learning_rate": 1.0, "decay_steps": 50, "end_learning_rate": 0.1, "power": 0.5,
         "cycle": True},
    ],
    "piecewise_constant": [
        {"boundaries": [10, 60], "values": [0.1, 0.05, 0.01]},
        {"boundaries": [0, 5], "values": [1.0, 0.5, 0.25]},
        {"boundaries": [20, 100], "values": [0.3, 0.2, 0.1]},
    ],
    "cyclical": [
        {"initial_learning_rate": 0.01, "maximal_learning_rate": 0.1, "step_size": 10, "mode": "exp_range",
         "gamma": 0.99},
        {"initial_learning_rate": 0.001, "maximal_learning_rate": 0.5, "step_size": 4, "mode": "exp_range",
         "gamma": 0.9},
        {"initial_learning_rate": 0.2, "maximal_learning_rate": 0.3, "step_size": 25, "mode": "exp_range",
         "gamma": 1.0},
    ],
    "cosine": [
        {"initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.0},
        {"initial_learning_rate": 0.2, "decay_steps": 30, "alpha": 0.5},
        {"initial_learning_rate": 1.0, "decay_steps": 120, "alpha": 0.01},
    ],
    "cosine_restarts": [
        {"maximal_learning_rate": 0.1, "minimal_learning_rate": 0.0, "period": 10},
        {"maximal_learning_rate": 0.5, "minimal_learning_rate": 0.01, "period": 3},
        {"maximal_learning_rate": 1.0, "minimal_learning_rate": 0.5, "period": 40},
    ],
    "warmup": [
        {"target": ("cosine", {"initial_learning_rate": 0.1, "decay_steps": 100, "alpha": 0.0}),
         "warmup_steps": 10, "initial_learning_rate": 0.0},
        {"target": ("cosine", {"initial_learning_rate": 0.5, "decay_steps": 30, "alpha": 0.1}),
         "warmup_steps": 0, "initial_learning_rate": 0.05},
        {"target": ("cosine", {"initial_learning_rate": 1.0, "decay_steps": 60, "alpha": 0.2}),
         "warmup_steps": 45, "initial_learning_rate": 0.01},
    ],
}


def rate_keywords(population: list[dict[str, Any]]) -> dict[str, Any]:
    """The keywords of K trials as [K, 1] float64 tensors; options shared by all stay Python."""
    first = population[0]
    stacked: dict[str, Any] = {}
    for key, value in first.items():
        column = [keywords[key] for keywords in population]
        if isinstance(value, (bool, str)):
            assert all(v == value for v in column), key
            stacked[key] = value
        elif isinstance(value, tuple):
            target_name = value[0]
            stacked[key] = functools.partial(
                gdbench.schedules.REGISTRY[target_name].rate_function,
                **rate_keywords([target for _, target in column]),
            )
        elif isinstance(value, list):
            stacked[key] = [
                ops.convert_to_tensor([[v[i]] for v in column], "float64") for i in range(len(value))
            ]
        else:
            stacked[key] = ops.convert_to_tensor([[v] for v in column], "float64")
    return stacked


@pytest.mark.parametrize("name", gdbench.schedules.names())
def test_rate_function_broadcasts_over_a_population(name):
    population = POPULATIONS[name]
    rate_function = gdbench.schedules.REGISTRY[name].rate_function
    together = rate_keywords(population)
    one_by_one = [rate_keywords([keywords]) for keywords in population]
    for step in (0, 3, 5, 10, 11, 30, 45, 61, 120, 299):
        step_tensor = ops.convert_to_tensor(step, "float64")
        rates = rate_function(step_tensor, **together)
        assert tuple(rates.shape) == (len(population), 1)
        expected = [float(ops.reshape(rate_function(step_tensor, **single), ())) for single in one_by_one]
        np.testing.assert_allclose(ops.convert_to_numpy(rates)[:, 0], expected, rtol=1e-15, atol=0)
        by_reference = [reference(name, keywords)(step) for keywords in population]
        np.testing.assert_allclose(
            ops.convert_to_numpy(rates)[:, 0], by_reference,
            **float64_tolerance(name, population[0], rtol=1e-12),
        )


# -- validation ----------------------------------------------------------------------------

# Valid keywords per schedule (its first case), which INVALID spoils one or two at a time.
VALID = {name: keywords for name, keywords in reversed(CASES)}
VALID["warmup"] = {"target": 0.1, "warmup_steps": 10}


# name, keywords that replace valid ones, the start of the error message.
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("constant", {"learning_rate": 0.0}, "learning_rate"),
    ("constant", {"learning_rate": float("nan")}, "learning_rate"),
    ("constant", {"learning_rate": True}, "learning_rate"),
    ("step_decay", {"initial_learning_rate": -0.1}, "initial_learning_rate"),
    ("step_decay", {"drop": 0.0}, "drop"),
    ("step_decay", {"drop": 1.5}, "drop"),
    ("step_decay", {"steps_per_drop": 0}, "steps_per_drop"),
    ("step_decay", {"steps_per_drop": 2.5}, "steps_per_drop"),
    ("exponential", {"decay_rate": 0.0}, "decay_rate"),
    ("exponential", {"decay_steps": 0}, "decay_steps"),
    ("exponential", {"staircase": "yes"}, "staircase"),
    ("inverse_time", {"decay_rate": -1.0}, "decay_rate"),
    ("inverse_time", {"decay_steps": -5}, "decay_steps"),
    ("inverse_sqrt", {"decay_steps": 0.0}, "decay_steps"),
    ("inverse_sqrt", {"initial_learning_rate": float("inf")}, "initial_learning_rate"),
    ("polynomial", {"end_learning_rate": -0.1}, "end_learning_rate"),
    ("polynomial", {"power": 0.0}, "power"),
    ("polynomial", {"cycle": 1}, "cycle"),
    ("piecewise_constant", {"boundaries": [10, 10]}, "boundaries"),
    ("piecewise_constant", {"boundaries": [20, 10]}, "boundaries"),
    ("piecewise_constant", {"boundaries": []}, "boundaries"),
    ("piecewise_constant", {"boundaries": "10"}, "boundaries"),
    ("piecewise_constant", {"values": [0.1, 0.05]}, "values"),
    ("piecewise_constant", {"values": [0.1, 0.0, 0.01]}, r"values\[1\]"),
    ("cyclical", {"maximal_learning_rate": 0.0001}, "maximal_learning_rate"),
    ("cyclical", {"step_size": 0}, "step_size"),
    ("cyclical", {"step_size": 1.5}, "step_size"),
    ("cyclical", {"mode": "sine"}, "mode: expected one of triangular, triangular2, exp_range"),
    ("cyclical", {"mode": "exp_range", "gamma": 0.0}, "gamma"),
    ("cyclical", {"mode": "exp_range", "gamma": 1.5}, "gamma"),
    ("cyclical", {"mode": "triangular", "gamma": 0.9}, "gamma"),
    ("cosine", {"decay_steps": 0}, "decay_steps"),
    ("cosine", {"alpha": -0.1}, "alpha"),
    ("cosine", {"alpha": 1.5}, "alpha"),
    ("cosine_restarts", {"minimal_learning_rate": -0.1}, "minimal_learning_rate"),
    ("cosine_restarts", {"minimal_learning_rate": 0.5}, "maximal_learning_rate"),
    ("cosine_restarts", {"period": 0}, "period"),
    ("cosine_restarts", {"period": 10.5}, "period"),
    ("warmup", {"warmup_steps": -1}, "warmup_steps"),
    ("warmup", {"warmup_steps": 2.5}, "warmup_steps"),
    ("warmup", {"initial_learning_rate": -0.1}, "initial_learning_rate"),
    ("warmup", {"target": 0.0}, "target"),
    ("warmup", {"target": "cosine"}, "target"),
    ("warmup", {"target": lambda step: 0.1}, "target"),
]


@pytest.mark.parametrize("name", NAMES)
def test_bad_keyword_value_raises_naming_it(name):
    invalid = [(bad, keyword) for case, bad, keyword in INVALID if case == name]
    assert invalid, f"no invalid keywords listed for {name}"
    for bad, keyword in invalid:
        keywords = {**VALID[name], **bad}
        with pytest.raises(ValueError, match=f"^{keyword}"):
            gdbench.schedules.get(name, **keywords)
        with pytest.raises(ValueError, match=f"^{keyword}"):
            gdbench.schedules.REGISTRY[name](**keywords)


def test_integral_floats_are_accepted_as_step_counts():
    schedule = gdbench.schedules.get("cosine_restarts", maximal_learning_rate=0.1,
                                     minimal_learning_rate=0.0, period=50.0)
    assert schedule.period == 50 and isinstance(schedule.period, int)


# -- registry ------------------------------------------------------------------------------


def test_names_lists_every_schedule_in_order():
    assert gdbench.schedules.names() == [
        "constant", "step_decay", "exponential", "inverse_time", "inverse_sqrt", "polynomial",
        "piecewise_constant", "cyclical", "cosine", "cosine_restarts", "warmup",
    ]
    assert {name for name, _ in CASES} == set(gdbench.schedules.names())
    assert set(REFERENCES) == set(gdbench.schedules.names())


def test_get_by_name_config_and_instance():
    schedule = gdbench.schedules.get("COSINE", initial_learning_rate=0.1, decay_steps=100)
    assert isinstance(schedule, gdbench.schedules.CosineDecay)
    assert isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
    assert gdbench.schedules.get(schedule) is schedule
    rebuilt = gdbench.schedules.get(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(rebuilt, gdbench.schedules.CosineDecay)
    assert rebuilt.get_config() == schedule.get_config()


def test_get_unknown_name_lists_registered_names():
    with pytest.raises(KeyError, match="unknown name 'onecycle'.*constant, step_decay.*warmup"):
        gdbench.schedules.get("onecycle")


def test_get_unknown_keyword_names_it_and_lists_accepted():
    accepted = "initial_learning_rate, decay_steps, alpha"
    with pytest.raises(ValueError, match=f"unknown keyword.*decay_step;.*{accepted}"):
        gdbench.schedules.get("cosine", initial_learning_rate=0.1, decay_step=100)


def test_get_missing_keyword_names_it():
    with pytest.raises(ValueError, match="missing keyword.*step_size"):
        gdbench.schedules.get("cyclical", initial_learning_rate=0.1, maximal_learning_rate=1.0)


def test_get_refuses_keywords_beside_an_instance_and_other_identifiers():
    schedule = gdbench.schedules.get("constant", learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        gdbench.schedules.get(schedule, learning_rate=0.2)
    with pytest.raises(TypeError, match="expected a name"):
        gdbench.schedules.get(0.1)


# -- serialization -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    steps = ops.convert_to_tensor(STEPS, "float64")
    for keywords in cases_of(name):
        schedule = build(name, keywords)
        config = schedule.get_config()
        json.dumps(config)
        for rebuilt in (
            type(schedule).from_config(config),
            keras.optimizers.schedules.deserialize(
                json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
            ),
        ):
            assert type(rebuilt) is type(schedule)
            assert rebuilt.get_config() == config
            np.testing.assert_array_equal(
                ops.convert_to_numpy(rebuilt(steps)), ops.convert_to_numpy(schedule(steps))
            )


@pytest.mark.parametrize("name", NAMES)
def test_registered_name_deserializes_and_repr_rebuilds(name):
    """Registered as ``gdbench>ClassName``; the repr, evaluated, is the same schedule."""
    for keywords in cases_of(name):
        schedule = build(name, keywords)
        cls = type(schedule)
        registered = f"gdbench>{cls.__name__}"
        assert keras.saving.get_registered_name(cls) == registered
        config = schedule.get_config()
        rebuilt = keras.optimizers.schedules.deserialize(
            {"class_name": registered, "config": copy.deepcopy(config)})
        assert type(rebuilt) is cls
        assert rebuilt.get_config() == config
        text = repr(schedule)
        assert text.startswith(f"{cls.__name__}(") and "{" not in text, text
        evaluated = eval(text, vars(gdbench.schedules))
        assert type(evaluated) is cls
        assert evaluated.get_config() == config


WARMUP_COSINE = ("warmup", {
    "target": ("cosine", {"initial_learning_rate": 0.05, "decay_steps": 40, "alpha": 0.1}),
    "warmup_steps": 3, "initial_learning_rate": 0.001,
})


def test_warmup_serializes_its_target():
    config = build(*WARMUP_COSINE).get_config()
    assert config["target"]["registered_name"] == "gdbench>CosineDecay"
    assert config["target"]["config"] == {"initial_learning_rate": 0.05, "decay_steps": 40.0, "alpha": 0.1}
    rebuilt = gdbench.schedules.LinearWarmup.from_config(config)
    assert isinstance(rebuilt.target, gdbench.schedules.CosineDecay)


def test_warmup_takes_a_keras_schedule_as_target():
    target = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    schedule = gdbench.schedules.get("warmup", target=target, warmup_steps=10)
    rebuilt = gdbench.schedules.get(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(rebuilt.target, keras.optimizers.schedules.ExponentialDecay)
    assert float(rebuilt(ops.convert_to_tensor(5, "int64"))) == pytest.approx(0.025, rel=1e-6)
    assert float(rebuilt(ops.convert_to_tensor(20.0, "float64"))) == pytest.approx(0.025, rel=1e-6)


def test_warmup_round_trips_inside_an_optimizer_config():
    schedule = build(*WARMUP_COSINE)
    optimizer = gdbench.optimizers.get("adam", learning_rate=schedule)
    config = optimizer.get_config()
    # from_config deserializes the schedule in place; keep the original for comparison.
    rebuilt = type(optimizer).from_config(copy.deepcopy(config))
    assert isinstance(rebuilt._learning_rate, gdbench.schedules.LinearWarmup)
    assert rebuilt.get_config()["learning_rate"] == config["learning_rate"]
    assert config["learning_rate"]["config"] == schedule.get_config()


def test_warmup_round_trips_through_a_keras_file(tmp_path):
    schedule = build(*WARMUP_COSINE)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=gdbench.optimizers.get("adam", learning_rate=schedule), loss="mse")
    features = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    model.fit(features, features.sum(axis=1, keepdims=True), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == 2
    loaded_schedule = loaded.optimizer._learning_rate
    assert isinstance(loaded_schedule, gdbench.schedules.LinearWarmup)
    assert loaded_schedule.get_config() == schedule.get_config()
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(schedule(2)), rel=1e-6)


def test_optimizer_applies_the_rate_of_each_step():
    # Plain GD on w with loss w: the gradient is 1, so each update subtracts exactly η(step).
    schedule = gdbench.schedules.get("step_decay", initial_learning_rate=0.5, drop=0.5, steps_per_drop=1)
    optimizer = gdbench.optimizers.get("gd", learning_rate=schedule)
    weight = keras.Variable(10.0)
    for _ in range(3):
        optimizer.apply_gradients([(ops.convert_to_tensor(1.0), weight)])
    assert float(ops.convert_to_numpy(weight)) == pytest.approx(10.0 - 0.5 - 0.25 - 0.125, rel=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_schedule_evaluated_for_all_steps_at_once_matches_step_by_step(name):
    """The traces evaluate a schedule once on the vector of steps; the optimizer evaluates it
    at its iteration count, one step at a time: the same η at every step, to 1e-12."""
    from gdbench.tasks.trace import schedule_learning_rates

    for keywords in cases_of(name):
        optimizer = gdbench.optimizers.get("gd", learning_rate=build(name, keywords))
        at_once = schedule_learning_rates(optimizer, len(STEPS))
        assert at_once.shape == (len(STEPS),) and at_once.dtype == np.float64
        schedule = build(name, keywords)
        one_by_one = [float(ops.convert_to_numpy(schedule(np.int64(step)))) for step in STEPS]
        np.testing.assert_allclose(at_once, one_by_one,
                                   **float64_tolerance(name, keywords, rtol=1e-12, atol=1e-15))
        # As the optimizer reads it, at its own iteration count.
        for step in boundary_steps(keywords):
            optimizer.iterations.assign(step)
            np.testing.assert_allclose(
                at_once[step], float(ops.convert_to_numpy(optimizer.learning_rate)),
                **float64_tolerance(name, keywords, rtol=1e-12, atol=1e-15))
