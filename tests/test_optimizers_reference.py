"""gdbench's optimizers compute exactly the updates DESIGN.md documents.

Three kinds of checks:

- every optimizer × hyperparameter set × gradient sequence × dtype × constant
  rate or schedule, step by step against the independent numpy reference in
  ``reference_optimizers`` (itself pinned by hand-computed single steps);
- identities between gdbench's own optimizers (AdamW with λ = 0 is Adam, ...);
- how each gdbench optimizer relates to the Keras built-in of the same
  algorithm: identical, or identical up to a documented difference that the
  test measures.

The optimizers run through ``apply_gradients``. Under TensorFlow they run inside
one ``tf.function`` per trajectory batch: graph mode is how ``model.fit`` runs
them, and it keeps the few hundred cases fast. Under the other backends they
run eagerly, step by step.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import pytest
import reference_optimizers as reference
from backends import BACKEND
from keras import ops
from optimizer_cases import CASES, NAMES, OPTIMIZERS, OptimizerCase, float32_bound

import gdbench.optimizers

STEPS = 40
SHAPE = (3, 4)
DTYPES = ("float64", "float32")
SEQUENCES = ("dense", "sparse")
LEARNING_RATES = ("constant", "schedule")

# float64: both sides compute the same formulas in double precision and differ
# only in the order of a few roundings, ~1e-16 relative per step. atol covers
# parameters that pass close to zero.
FLOAT64_RTOL, FLOAT64_ATOL = 1e-9, 1e-12
def _gradient_sequences() -> dict[str, np.ndarray]:
    """Two gradient sequences of ``STEPS`` steps, shaped ``SHAPE``.

    ``dense``: Gaussian, with element scales from 1e-2 to 3 so that ε = 1e-3
    matters for some elements and not for others.

    ``sparse``: the lectures' rare feature. About 80 % of the entries are
    exactly 0; two whole steps are zero; element (1, 1) never receives a
    gradient and element (2, 3) only from step 21. Element (0, 1) alternates
    sign at every step for 20 steps, element (0, 2) keeps its sign for the last
    20: rprop takes its shrink, grow and zero branches and reaches both clips.
    """
    rng = np.random.default_rng(7)
    scales = 10.0 ** rng.uniform(-2.0, 0.5, size=SHAPE)
    dense = rng.normal(size=(STEPS, *SHAPE)) * scales
    sparse = rng.normal(size=(STEPS, *SHAPE)) * scales * (rng.random((STEPS, *SHAPE)) < 0.12)
    sparse[:, 1, 1] = 0.0
    sparse[:20, 2, 3] = 0.0
    half = STEPS // 2
    sparse[:, 0, 1] = 0.0
    signs = np.where(np.arange(half) % 2 == 0, 1.0, -1.0)
    sparse[:half, 0, 1] = signs * rng.uniform(0.5, 2.0, half)
    sparse[:, 0, 2] = 0.0
    sparse[half:, 0, 2] = rng.uniform(0.1, 1.0, STEPS - half)
    sparse[8:10] = 0.0
    return {"dense": dense, "sparse": sparse}


GRADIENTS = _gradient_sequences()
DENSE, SPARSE = GRADIENTS["dense"], GRADIENTS["sparse"]
INITIAL_PARAM = np.random.default_rng(11).normal(size=SHAPE)

#: One optimizer and what it steps: a (gradient sequence, dtype) per variable.
Run = tuple[keras.optimizers.Optimizer, Sequence[tuple[np.ndarray, str]]]


def _trajectories(runs: Sequence[Run], param: np.ndarray = INITIAL_PARAM) -> list[list[np.ndarray]]:
    """The parameters after each step, for every variable of every run.

    Each variable starts at ``param``; all runs step together through
    ``optimizer.apply_gradients``, as ``model.fit`` would: inside one
    ``tf.function`` under TensorFlow, eagerly under the other backends.
    Returns ``trajectories[run][variable]``, shaped ``(steps, *shape)``.
    """
    plan = []
    for index, (optimizer, inputs) in enumerate(runs):
        variables = [
            keras.Variable(param, dtype=dtype, name=f"w{index}_{position}")
            for position, (_, dtype) in enumerate(inputs)
        ]
        optimizer.build(variables)
        grads = [ops.convert_to_tensor(g, dtype=dtype) for g, dtype in inputs]
        plan.append((optimizer, variables, grads))
    flat = [variable for _, variables, _ in plan for variable in variables]
    steps = len(runs[0][1][0][0])
    loop = _graph_loop if BACKEND == "tensorflow" else _eager_loop
    stacked = iter(loop(plan, flat, steps))
    return [[next(stacked) for _ in variables] for _, variables, _ in plan]


def _graph_loop(plan: list, flat: list[keras.Variable], steps: int) -> list[np.ndarray]:
    """Every variable's trajectory, the steps run in one TensorFlow graph."""
    import tensorflow as tf

    @tf.function
    def loop() -> list[tf.Tensor]:
        arrays = [tf.TensorArray(variable.dtype, size=steps) for variable in flat]
        for step in tf.range(steps):
            for optimizer, variables, grads in plan:
                optimizer.apply_gradients([(g[step], v) for g, v in zip(grads, variables)])
            arrays = [array.write(step, v.value) for array, v in zip(arrays, flat)]
        return [array.stack() for array in arrays]

    return [np.asarray(array) for array in loop()]


def _eager_loop(plan: list, flat: list[keras.Variable], steps: int) -> list[np.ndarray]:
    """Every variable's trajectory, stepped eagerly."""
    trajectories: list[list[np.ndarray]] = [[] for _ in flat]
    for step in range(steps):
        for optimizer, variables, grads in plan:
            optimizer.apply_gradients([(g[step], v) for g, v in zip(grads, variables)])
        for trajectory, variable in zip(trajectories, flat):
            trajectory.append(ops.convert_to_numpy(variable))
    return [np.stack(trajectory) for trajectory in trajectories]


def _schedule(initial_learning_rate: float) -> keras.optimizers.schedules.LearningRateSchedule:
    """η halving every 10 steps: after 40 steps η has fallen 16-fold."""
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=initial_learning_rate, decay_steps=10, decay_rate=0.5
    )


def _learning_rate(case: OptimizerCase, kind: str) -> tuple[Any, Callable[[int], float]]:
    """What the optimizer is given as η, and the same η as the reference's lr(step0).

    A constant η is exact: gdbench keeps it in float64 (Keras's built-ins round
    it to float32). Keras's schedules compute in float32, so a float64 model
    steps with a scheduled η rounded to float32: the reference is handed
    exactly the schedule's values, evaluated as the optimizer evaluates them,
    in graph mode under TensorFlow (TensorFlow's float32 ``pow`` differs in
    its last bit between eager and graph execution for a few steps).
    """
    if kind == "constant":
        return case.learning_rate, lambda step0: case.learning_rate
    schedule = _schedule(case.learning_rate)
    return schedule, _scheduled_rates(case.learning_rate).__getitem__


@functools.cache
def _scheduled_rates(initial_learning_rate: float) -> list[float]:
    evaluate = _schedule(initial_learning_rate)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        evaluate = tf.function(evaluate)
    return [
        float(ops.convert_to_numpy(evaluate(ops.convert_to_tensor(step0, "int64"))))
        for step0 in range(STEPS)
    ]


VARIABLES = [(sequence, dtype) for sequence in SEQUENCES for dtype in DTYPES]


@functools.cache
def _gdbench_runs(name: str) -> dict[tuple[int, str], dict[tuple[str, str], np.ndarray]]:
    """Every case of optimizer ``name`` × learning-rate kind, stepped in one graph.

    Each optimizer instance steps four variables, one per (sequence, dtype):
    they are independent, as every update is element-wise per variable.
    Returns ``{(case index, lr kind): {(sequence, dtype): trajectory}}``.
    """
    keys, runs = [], []
    for index, case in enumerate(CASES):
        if case.name != name:
            continue
        for lr_kind in LEARNING_RATES:
            learning_rate, _ = _learning_rate(case, lr_kind)
            keywords = dict(case.keywords)
            if lr_kind == "schedule" or "learning_rate" in keywords:
                keywords["learning_rate"] = learning_rate
            optimizer = gdbench.optimizers.get(name, **keywords)
            keys.append((index, lr_kind))
            inputs = [(GRADIENTS[sequence], dtype) for sequence, dtype in VARIABLES]
            runs.append((optimizer, inputs))
    return {
        key: dict(zip(VARIABLES, trajectories))
        for key, trajectories in zip(keys, _trajectories(runs))
    }


@pytest.mark.parametrize("lr_kind", LEARNING_RATES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sequence", SEQUENCES)
@pytest.mark.parametrize("case_index", range(len(CASES)), ids=[case.id for case in CASES])
def test_every_step_matches_reference(
    case_index: int, sequence: str, dtype: str, lr_kind: str
) -> None:
    case = CASES[case_index]
    _, lr = _learning_rate(case, lr_kind)
    expected = reference.run(
        case.name, INITIAL_PARAM, GRADIENTS[sequence], lr=lr, dtype=np.dtype(dtype).type,
        **case.rule_hyperparameters,
    )
    actual = _gdbench_runs(case.name)[(case_index, lr_kind)][(sequence, dtype)]
    assert actual.dtype == np.dtype(dtype)
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    if dtype == "float64":
        bound = FLOAT64_ATOL + FLOAT64_RTOL * np.abs(expected)
    else:
        bound = float32_bound(case, INITIAL_PARAM, expected)
    failing = np.argwhere(error > bound)
    assert failing.size == 0, (
        f"{case.id}, {sequence} gradients, {dtype}, {lr_kind} rate: first mismatch at step "
        f"{failing[0][0] + 1}, element {tuple(failing[0][1:])}: gdbench "
        f"{actual[tuple(failing[0])]!r}, reference {expected[tuple(failing[0])]!r} "
        f"(|error| {error[tuple(failing[0])]:.3g} > bound {bound[tuple(failing[0])]:.3g}); "
        f"{len(failing)} mismatches in all"
    )


def test_every_registered_optimizer_has_its_row() -> None:
    """The table has a row for every registered optimizer, with the defaults its class has."""
    assert sorted(OPTIMIZERS) == sorted(NAMES), "a registered optimizer without its row"
    for name in NAMES:
        optimizer_class = gdbench.optimizers.REGISTRY[name]
        parameters = inspect.signature(optimizer_class.__init__).parameters
        defaults = {key: parameters[key].default for key in OPTIMIZERS[name].defaults}
        assert defaults == OPTIMIZERS[name].defaults, name
        assert len(OPTIMIZERS[name].variants) >= 2, f"{name}: fewer than two variants"


def test_sparse_sequence_has_what_it_promises() -> None:
    """The sparse sequence really is sparse and really exercises rprop's branches."""
    assert np.mean(SPARSE == 0.0) >= 0.78
    assert not SPARSE[8].any() and not SPARSE[9].any()
    assert not SPARSE[:, 1, 1].any() and not SPARSE[:20, 2, 3].any() and SPARSE[20:, 2, 3].any()
    products = SPARSE[1:] * SPARSE[:-1]
    assert np.sum(products > 0) >= 10 and np.sum(products < 0) >= 10
    assert np.sum((products == 0) & (SPARSE[1:] != 0)) >= 10


def test_rprop_cases_reach_both_step_clips() -> None:
    """Rprop's first variant reaches min_step and max_step on the sparse sequence."""
    (case,) = [c for c in CASES if c.name == "rprop" and c.keywords.get("max_step") == 0.05]
    params = reference.run(
        "rprop", INITIAL_PARAM, SPARSE, lr=lambda step0: case.learning_rate,
        **case.rule_hyperparameters,
    )
    moves = np.abs(np.diff(params, axis=0))
    np.testing.assert_allclose(moves[:, 0, 2].max(), case.hyperparameters["max_step"])
    shrinking = moves[:, 0, 1]
    np.testing.assert_allclose(shrinking[shrinking > 0].min(), case.hyperparameters["min_step"])


# --- the reference itself, pinned by hand -------------------------------------


def _one(value: float) -> Callable[[int], float]:
    return lambda step0: value


def test_reference_adam_first_step_moves_by_about_eta() -> None:
    # With bias correction m̂₁ = (1−β1)g/(1−β1) = g and v̂₁ = g², so the first
    # step is η g/(|g| + ε) ≈ η sign(g), whatever |g|:
    #   g = 0.5:  1 − 0.1·0.5/(0.5 + 1e-8)   = 0.900000002
    #   g = −3:   1 + 0.1·3/(3 + 1e-8)       = 1.0999999996666667
    #   g = 1e-3: 1 − 0.1·1e-3/(1e-3 + 1e-8) = 0.90000099999  (ε starts to show)
    params = reference.adam(
        np.ones(3), [np.array([0.5, -3.0, 1e-3])], lr=_one(0.1),
        beta_1=0.9, beta_2=0.999, epsilon=1e-8,
    )
    np.testing.assert_allclose(
        params[0], [0.900000002, 1.0999999996666667, 0.90000099999], rtol=1e-14
    )


def test_reference_adam_without_bias_correction_first_step() -> None:
    # m₁ = 0.1·0.5 = 0.05 ; v₁ = 0.001·0.25 = 0.00025 ; √v₁ = 0.015811388300841896
    # step = 0.1·0.05/(0.015811388300841896 + 1e-8) = 0.31622756601696445
    # i.e. (1−β1)/√(1−β2) ≈ 3.16 times η·sign(g): larger than with bias correction.
    params = reference.adam(
        np.ones(1), [np.array([0.5])], lr=_one(0.1),
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, bias_correction=False,
    )
    np.testing.assert_allclose(params[0], [1 - 0.31622756601696445], rtol=1e-14)


def test_reference_momentum_second_step() -> None:
    # γ = 0.9, η = 0.1, g = 1 then 2:
    # v₁ = 0.1·1 = 0.1, w₁ = −0.1 ; v₂ = 0.9·0.1 + 0.1·2 = 0.29, w₂ = −0.39
    grads = [np.array([1.0]), np.array([2.0])]
    params = reference.momentum(np.zeros(1), grads, lr=_one(0.1), momentum=0.9)
    np.testing.assert_allclose(params[:, 0], [-0.1, -0.39], rtol=1e-14)


def test_reference_nesterov_second_step() -> None:
    # γ = 0.9, η = 0.1, g = 1 then 2:
    # v₁ = 1, w₁ = −0.1·(0.9·1 + 1) = −0.19
    # v₂ = 0.9·1 + 2 = 2.9, w₂ = −0.19 − 0.1·(0.9·2.9 + 2) = −0.19 − 0.461 = −0.651
    grads = [np.array([1.0]), np.array([2.0])]
    params = reference.nesterov(np.zeros(1), grads, lr=_one(0.1), momentum=0.9)
    np.testing.assert_allclose(params[:, 0], [-0.19, -0.651], rtol=1e-14)


def test_reference_adagrad_first_step_with_initial_accumulator() -> None:
    # v₁ = 0.1 + 1² = 1.1 ; step = 0.1·1/√(1.1 + 1e-8) = 0.1/1.0488088529374644
    #                            = 0.09534625849116717
    params = reference.adagrad(
        np.zeros(1), [np.array([1.0])], lr=_one(0.1), epsilon=1e-8, initial_accumulator_value=0.1
    )
    np.testing.assert_allclose(params[0], [-0.09534625849116717], rtol=1e-14)


def test_reference_adadelta_first_step() -> None:
    # ρ = 0.95, ε = 1e-6, η = 1, g = 0.5:
    # v₁ = 0.05·0.25 = 0.0125 ; Δ = √(0 + 1e-6)/√(0.0125 + 1e-6)·0.5
    #    = 0.001/0.11180787092150535·0.5 = 0.00447195708029379
    # w₁ = −Δ: AdaDelta's first step is set by ε, not by η.
    params = reference.adadelta(
        np.zeros(1), [np.array([0.5])], lr=_one(1.0), rho=0.95, epsilon=1e-6
    )
    np.testing.assert_allclose(params[0], [-0.00447195708029379], rtol=1e-14)


def test_reference_nadam_first_step() -> None:
    # m̂₁ = g = 0.5, v̂₁ = g² ; look-ahead = 0.9·0.5 + 0.1·0.5/(1 − 0.9) = 0.95
    # step = 0.1/(0.5 + 1e-8)·0.95 = 0.18999999620000005 ≈ 1.9 η sign(g)
    params = reference.nadam(
        np.zeros(1), [np.array([0.5])], lr=_one(0.1), beta_1=0.9, beta_2=0.999, epsilon=1e-8
    )
    np.testing.assert_allclose(params[0], [-0.18999999620000005], rtol=1e-14)


def test_reference_adamw_first_step_decays_pre_step_weight() -> None:
    # w₀ = 2, g = 0.5, η = 0.1, λ = 0.01: Adam moves by 0.1·0.5/(0.5 + 1e-8)
    # = 0.099999998 and the decay by η λ w₀ = 0.1·0.01·2 = 0.002:
    # w₁ = 2 − 0.099999998 − 0.002 = 1.898000002
    params = reference.adamw(
        np.full(1, 2.0), [np.array([0.5])], lr=_one(0.1),
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01,
    )
    np.testing.assert_allclose(params[0], [1.898000002], rtol=1e-14)


def test_reference_rprop_sign_change() -> None:
    # η = 0.01 (step 1's step size), η₋ = 0.5, η₊ = 1.2.
    # Element 0, g = +1, −1, −1: step 1 moves −0.01 (w = −0.01) ; step 2 sees a
    # sign change: s = 0.005, g ← 0, so w stays −0.01 ; step 3: g_prev = 0, s
    # unchanged, w = −0.01 + 0.005 = −0.005.
    # Element 1, g = +1, +2, +2: s = 0.01, 0.012, 0.0144: w = −0.01, −0.022, −0.0364.
    grads = [np.array([1.0, 1.0]), np.array([-1.0, 2.0]), np.array([-1.0, 2.0])]
    params = reference.rprop(
        np.zeros(2), grads, lr=_one(0.01), eta_minus=0.5, eta_plus=1.2, min_step=1e-6, max_step=50.0
    )
    np.testing.assert_allclose(params[:, 0], [-0.01, -0.01, -0.005], rtol=1e-14)
    np.testing.assert_allclose(params[:, 1], [-0.01, -0.022, -0.0364], rtol=1e-14)


def test_reference_float32_computes_in_float32() -> None:
    grads = [np.array([0.5, -3.0, 1e-3])] * 3
    keywords = {"lr": _one(0.1), "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
    params = reference.adam(np.ones(3), grads, dtype=np.float32, **keywords)
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, reference.adam(np.ones(3), grads, **keywords), rtol=1e-6)


# --- identities between gdbench's optimizers ----------------------------------

# Two gdbench trajectories that are the same algorithm up to rounding.
IDENTICAL = {"rtol": 1e-13, "atol": 1e-15}


def _pair(
    first: keras.optimizers.Optimizer, second: keras.optimizers.Optimizer, grads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both optimizers' float64 trajectories on ``grads``, stepped in one graph."""
    (a,), (b,) = _trajectories([(first, [(grads, "float64")]), (second, [(grads, "float64")])])
    return a, b


@pytest.mark.parametrize("grads", [DENSE, SPARSE], ids=SEQUENCES)
def test_adamw_without_weight_decay_is_adam(grads: np.ndarray) -> None:
    # λ = 0 removes the decay term η λ w_old and leaves Adam's step.
    np.testing.assert_allclose(*_pair(
        gdbench.optimizers.get("adamw", learning_rate=0.01, weight_decay=0.0),
        gdbench.optimizers.get("adam", learning_rate=0.01), grads,
    ), **IDENTICAL)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
@pytest.mark.parametrize("grads", [DENSE, SPARSE], ids=SEQUENCES)
def test_momentum_zero_is_gradient_descent(name: str, grads: np.ndarray) -> None:
    # γ = 0: momentum's v = η g, so w ← w − η g ; Nesterov's v = g, so
    # w ← w − η (0·v + g) = w − η g.
    np.testing.assert_allclose(*_pair(
        gdbench.optimizers.get(name, learning_rate=0.05, momentum=0.0),
        gdbench.optimizers.get("gd", learning_rate=0.05), grads,
    ), **IDENTICAL)


@pytest.mark.parametrize("grads", [DENSE, SPARSE], ids=SEQUENCES)
def test_adamax_without_momentum_is_maxprop(grads: np.ndarray) -> None:
    # β1 = 0: m = 0·m + 1·g = g and β1ᵗ = 0, so m̂ = g/(1 − 0) = g; AdaMax's
    # step η m̂/(v + ε) with v = max(β2 v, |g|) is MaxProp's η g/(v + ε) with ρ = β2.
    np.testing.assert_allclose(*_pair(
        gdbench.optimizers.get("adamax", learning_rate=0.01, beta_1=0.0, beta_2=0.99, epsilon=1e-3),
        gdbench.optimizers.get("maxprop", learning_rate=0.01, rho=0.99, epsilon=1e-3), grads,
    ), **IDENTICAL)


def _slots(optimizer: keras.optimizers.Optimizer, variable: keras.Variable) -> list[np.ndarray]:
    """The optimizer's slots of ``variable``, in the order it created them."""
    return [
        keras.ops.convert_to_numpy(slot) for slot in optimizer.variables
        if slot.name.startswith(f"{variable.name}_")
    ]


@pytest.mark.parametrize("bias_correction", [True, False])
def test_adam_without_momentum_is_rmsprop_with_epsilon_outside_the_root(
    bias_correction: bool,
) -> None:
    """Adam with β1 = 0 is *not* RMSProp (with bias correction) under DESIGN.md.

    With β1 = 0, m̂ = g, and Adam's v is RMSProp's v with ρ = β2. But Adam adds
    ε outside the root, √v̂ + ε, where RMSProp adds it inside, √(v + ε): no
    choice of ε makes the two steps equal. What *is* exact, and checked here
    step by step: Adam's second-moment slot equals RMSProp's accumulator, and
    Adam's step is η g/(√v̂ + ε) computed from that accumulator, with
    v̂ = v/(1 − β2ᵗ) (or v without bias correction). The test then shows the ε
    placement: a large ε separates the two optimizers measurably.
    """
    rho, eta, eps = 0.9, 0.01, 1e-3
    adam = gdbench.optimizers.get(
        "adam", learning_rate=eta, beta_1=0.0, beta_2=rho, epsilon=eps,
        bias_correction=bias_correction,
    )
    rmsprop = gdbench.optimizers.get("rmsprop", learning_rate=eta, rho=rho, epsilon=eps)
    w_adam = keras.Variable(INITIAL_PARAM, dtype="float64", name="w_adam")
    w_rms = keras.Variable(INITIAL_PARAM, dtype="float64", name="w_rms")
    for step, grad in enumerate(DENSE[:15], start=1):
        before = keras.ops.convert_to_numpy(w_adam)
        adam.apply_gradients([(keras.ops.convert_to_tensor(grad, dtype="float64"), w_adam)])
        rmsprop.apply_gradients([(keras.ops.convert_to_tensor(grad, dtype="float64"), w_rms)])
        (accumulator,) = _slots(rmsprop, w_rms)
        m, v = _slots(adam, w_adam)
        np.testing.assert_allclose(m, grad, **IDENTICAL)
        np.testing.assert_allclose(v, accumulator, **IDENTICAL)
        v_hat = accumulator / (1 - rho**step) if bias_correction else accumulator
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(w_adam), before - eta * grad / (np.sqrt(v_hat) + eps),
            **IDENTICAL,
        )
    gap = np.abs(keras.ops.convert_to_numpy(w_adam) - keras.ops.convert_to_numpy(w_rms))
    assert gap.max() > 1e-3


def test_amsgrad_is_adam_without_bias_correction_while_v_grows() -> None:
    """While v never decreases, AMSGrad's max(v̂, v) is v and it is Adam-No-BC.

    With a constant gradient magnitude c, v_t = c²(1 − β2ᵗ) grows at every
    step (signs may flip: m does not enter the max). Once the magnitude drops,
    v shrinks, AMSGrad keeps the old maximum and the two part.
    """
    rng = np.random.default_rng(3)
    magnitude = 10.0 ** rng.uniform(-2, 0, size=SHAPE)
    steady = np.sign(rng.normal(size=(STEPS, *SHAPE))) * magnitude
    shrinking = np.concatenate([steady[:10], steady[10:] * 0.1])
    keywords = {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.99}
    inputs = [(steady, "float64"), (shrinking, "float64")]
    (amsgrad, amsgrad_shrinking), (adam, adam_shrinking) = _trajectories([
        (gdbench.optimizers.get("amsgrad", **keywords), inputs),
        (gdbench.optimizers.get("adam", bias_correction=False, **keywords), inputs),
    ])
    np.testing.assert_allclose(amsgrad, adam, **IDENTICAL)
    np.testing.assert_allclose(amsgrad_shrinking[:10], adam_shrinking[:10], **IDENTICAL)
    assert np.max(np.abs(amsgrad_shrinking[-1] - adam_shrinking[-1])) > 1e-3


# --- relation to the Keras built-ins ------------------------------------------
#
# Keras's built-ins turn some Python-float hyperparameters into tensors with
# `ops.cast(value, variable.dtype)`, which goes through float32 first: on a
# float64 variable, SGD's momentum=0.9 acts as 0.89999997615814. The
# hyperparameters below are therefore dyadic (exact in float32), so that only
# the algorithms are compared.

ETA = 2.0**-6
SAME_AS_KERAS = [
    ("gd", {}, keras.optimizers.SGD, {}),
    ("momentum", {"momentum": 0.875}, keras.optimizers.SGD, {"momentum": 0.875}),
    (
        "adagrad", {"epsilon": 2.0**-20, "initial_accumulator_value": 0.125},
        keras.optimizers.Adagrad, {"epsilon": 2.0**-20, "initial_accumulator_value": 0.125},
    ),
    (
        "rmsprop", {"rho": 0.875, "epsilon": 2.0**-20},
        keras.optimizers.RMSprop, {"rho": 0.875, "epsilon": 2.0**-20},
    ),
    (
        "adadelta", {"rho": 0.9375, "epsilon": 2.0**-20},
        keras.optimizers.Adadelta, {"rho": 0.9375, "epsilon": 2.0**-20},
    ),
    (
        "adamax", {"beta_1": 0.875, "beta_2": 1 - 2.0**-10, "epsilon": 2.0**-10},
        keras.optimizers.Adamax, {"beta_1": 0.875, "beta_2": 1 - 2.0**-10, "epsilon": 2.0**-10},
    ),
]
KERAS_AGREES = {"rtol": 1e-11, "atol": 1e-14}
ADAM_BETAS = {"beta_1": 0.875, "beta_2": 1 - 2.0**-10}


def _keras_learning_rate(lr_kind: str) -> Any:
    return ETA if lr_kind == "constant" else _schedule(ETA)


@pytest.mark.parametrize("lr_kind", LEARNING_RATES)
@pytest.mark.parametrize(
    ("name", "keywords", "keras_class", "keras_keywords"), SAME_AS_KERAS,
    ids=[row[0] for row in SAME_AS_KERAS],
)
def test_same_algorithm_as_keras_builtin(
    name: str, keywords: dict[str, Any], keras_class: type, keras_keywords: dict[str, Any],
    lr_kind: str,
) -> None:
    """gd = SGD(); momentum = SGD(momentum=γ); adagrad, rmsprop, adadelta, adamax = Keras's.

    Momentum: Keras keeps m = −v (m ← γ m − η g ; w ← w + m), the same
    velocity with the opposite sign and η inside it in both, so the two agree
    under a schedule as well. The other rows apply the same formula, with ε in
    the same place.
    """
    inputs = [(DENSE, "float64"), (SPARSE, "float64")]
    ours, theirs = _trajectories([
        (
            gdbench.optimizers.get(name, learning_rate=_keras_learning_rate(lr_kind), **keywords),
            inputs,
        ),
        (keras_class(learning_rate=_keras_learning_rate(lr_kind), **keras_keywords), inputs),
    ])
    for sequence, a, b in zip(SEQUENCES, ours, theirs):
        np.testing.assert_allclose(a, b, **KERAS_AGREES, err_msg=f"{sequence} gradients")


def test_nesterov_matches_keras_with_constant_rate_only() -> None:
    """Keras's SGD(nesterov=True) keeps η inside the velocity, gdbench outside.

    Keras: m ← γ m − η g ; w ← w + γ m − η g. gdbench: v ← γ v + g ;
    w ← w − η (γ v + g). With a constant η, m = −η v at every step and the two
    are identical. Under a schedule Keras's m mixes past rates,
    −Σ γ^(t−k) η_k g_k, while gdbench scales the whole sum by today's η_t:
    they differ, here by more than 1e-3.
    """
    inputs = [(DENSE, "float64")]
    (constant,), (scheduled,), (keras_constant,), (keras_scheduled,) = _trajectories([
        (gdbench.optimizers.get("nesterov", learning_rate=ETA, momentum=0.875), inputs),
        (gdbench.optimizers.get("nesterov", learning_rate=_schedule(ETA), momentum=0.875), inputs),
        (keras.optimizers.SGD(learning_rate=ETA, momentum=0.875, nesterov=True), inputs),
        (keras.optimizers.SGD(learning_rate=_schedule(ETA), momentum=0.875, nesterov=True), inputs),
    ])
    np.testing.assert_allclose(constant, keras_constant, **KERAS_AGREES)
    assert np.max(np.abs(scheduled - keras_scheduled)) > 1e-3


@pytest.mark.parametrize(
    ("name", "keras_class", "extra"),
    [
        ("adam", keras.optimizers.Adam, {}),
        ("adamw", keras.optimizers.AdamW, {"weight_decay": 0.0625}),
    ],
)
def test_adam_matches_keras_up_to_epsilon_placement(
    name: str, keras_class: type, extra: dict[str, Any]
) -> None:
    """Keras's Adam and AdamW add ε to the *uncorrected* √v.

    Keras: w ← w − η √(1−β2ᵗ)/(1−β1ᵗ) · m/(√v + ε). Dividing through,
    this is gdbench's η m̂/(√v̂ + ε') with ε' = ε/√(1−β2ᵗ), 32× larger than ε
    at step 1 with β2 = 1 − 2⁻¹⁰. With ε = 1e-16 the two agree to 1e-9; with
    ε = 1e-3 they differ measurably. AdamW: Keras decays w by η λ w before
    Adam's step, with the same η(t−1); Adam's step does not depend on w, so
    this equals gdbench's decay on the pre-step weights.
    """
    keywords = {"learning_rate": ETA, **ADAM_BETAS, **extra}
    inputs = [(DENSE, "float64")]
    (tiny,), (keras_tiny,), (large,), (keras_large,) = _trajectories([
        (gdbench.optimizers.get(name, epsilon=1e-16, **keywords), inputs),
        (keras_class(epsilon=1e-16, **keywords), inputs),
        (gdbench.optimizers.get(name, epsilon=1e-3, **keywords), inputs),
        (keras_class(epsilon=1e-3, **keywords), inputs),
    ])
    np.testing.assert_allclose(tiny, keras_tiny, rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(large - keras_large)) > 1e-3


class _CancelBiasCorrection(keras.optimizers.schedules.LearningRateSchedule):
    """η (1 − β1ᵗ)/√(1 − β2ᵗ): undoes the factor Keras's Adam folds into its rate."""

    def __init__(self, eta: float, beta_1: float, beta_2: float) -> None:
        self.eta, self.beta_1, self.beta_2 = eta, beta_1, beta_2

    def __call__(self, step: Any) -> Any:
        t = keras.ops.cast(step, "float64") + 1.0
        return self.eta * (1.0 - self.beta_1**t) / keras.ops.sqrt(1.0 - self.beta_2**t)

    def get_config(self) -> dict[str, float]:
        return {"eta": self.eta, "beta_1": self.beta_1, "beta_2": self.beta_2}


def test_amsgrad_is_keras_amsgrad_without_bias_correction() -> None:
    """Keras's Adam(amsgrad=True) bias-corrects; gdbench's amsgrad does not.

    Keras: w ← w − η √(1−β2ᵗ)/(1−β1ᵗ) · m/(√v̂ + ε) with v̂ = max(v̂, v);
    gdbench: w ← w − η m/(√v̂ + ε). At the same η the first step differs by
    √(1−β2)/(1−β1) ≈ 0.25 here; given the rate η (1−β1ᵗ)/√(1−β2ᵗ), which
    cancels the factor, Keras's matches gdbench's (ε tiny, so its placement is
    moot).
    """
    inputs = [(DENSE, "float64")]
    (ours,), (keras_same_eta,), (keras_cancelled,) = _trajectories([
        (gdbench.optimizers.get("amsgrad", learning_rate=ETA, epsilon=1e-16, **ADAM_BETAS), inputs),
        (
            keras.optimizers.Adam(learning_rate=ETA, epsilon=1e-16, amsgrad=True, **ADAM_BETAS),
            inputs,
        ),
        (
            keras.optimizers.Adam(
                learning_rate=_CancelBiasCorrection(ETA, **ADAM_BETAS), epsilon=1e-16, amsgrad=True,
                **ADAM_BETAS,
            ),
            inputs,
        ),
    ])
    assert np.max(np.abs(ours - keras_same_eta)) > 1e-2
    np.testing.assert_allclose(ours, keras_cancelled, rtol=1e-9, atol=1e-12)


def test_nadam_differs_from_keras_momentum_schedule() -> None:
    """Keras's Nadam uses Dozat's momentum schedule; gdbench's does not.

    Keras: u_t = β1 (1 − ½·0.96ᵗ), m̂ = u_{t+1} m/(1 − Π_{i≤t+1} u_i) +
    (1 − u_t) g/(1 − Π_{i≤t} u_i). First step, β1 = 0.9: u₁ = 0.9·0.52 = 0.468,
    u₂ = 0.9·(1 − ½·0.9216) = 0.48528, m₁ = 0.1 g, so
    m̂ = 0.48528·0.1 g/(1 − 0.468·0.48528) + g = 0.0627866 g + g = 1.0627866 g
    and the step is ≈ 1.063 η sign(g). gdbench (DESIGN.md): β1 m̂ + (1−β1) g/(1−β1)
    = 0.9 g + g = 1.9 g, a step of ≈ 1.9 η sign(g). The trajectories then stay
    apart: by more than 5 % of the distance travelled after 40 steps.
    """
    grads = np.concatenate([np.full((1, *SHAPE), 0.5), DENSE[1:]])
    inputs = [(grads, "float64")]
    (ours,), (theirs,) = _trajectories([
        (gdbench.optimizers.get("nadam", learning_rate=ETA, epsilon=1e-16), inputs),
        (keras.optimizers.Nadam(learning_rate=ETA, epsilon=1e-16), inputs),
    ])
    np.testing.assert_allclose(INITIAL_PARAM - ours[0], 1.9 * ETA, rtol=1e-9)
    # Keras casts 0.96 and β1 = 0.9 to float32 on the way (see above): rtol 1e-6.
    u1, u2 = 0.9 * (1 - 0.5 * 0.96), 0.9 * (1 - 0.5 * 0.96**2)
    keras_first_step = (u2 * 0.1 / (1 - u1 * u2) + 1.0) * ETA
    np.testing.assert_allclose(INITIAL_PARAM - theirs[0], keras_first_step, rtol=1e-6)
    travelled = np.max(np.abs(ours[-1] - INITIAL_PARAM))
    assert np.max(np.abs(ours[-1] - theirs[-1])) > 0.05 * travelled
