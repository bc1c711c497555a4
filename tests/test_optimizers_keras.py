"""gdbench's optimizers behave as a Keras user expects of any Keras optimizer.

Training through ``model.fit`` (with and without XLA, in mixed precision),
configs and ``.keras`` files that round-trip mid-training, embeddings' sparse
gradients, gradient clipping and AdamW's exclusion list. Every test that makes
sense for all algorithms is parametrized over the one table in
``optimizer_cases``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import reference_optimizers as reference
from backends import BACKEND, tensorflow_only
from keras import ops
from optimizer_cases import CASES, NAMES, OptimizerCase

import gdbench.optimizers
import gdbench.schedules

DEFAULT_CASES = {case.name: case for case in CASES if not case.keywords}


def _regression_data(samples: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """y = X w + 0.5 with three features: a problem every optimizer can descend."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 3)).astype("float32")
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.5).astype("float32")
    return x, y


def _regression_model() -> keras.Model:
    return keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=2)),
    ])


def _schedule() -> keras.optimizers.schedules.LearningRateSchedule:
    return keras.optimizers.schedules.InverseTimeDecay(
        initial_learning_rate=0.01, decay_steps=4, decay_rate=0.5
    )


# --- training -----------------------------------------------------------------


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
@pytest.mark.parametrize("name", NAMES)
def test_fit_lowers_the_loss(name: str, jit_compile: bool) -> None:
    x, y = _regression_data()
    model = _regression_model()
    model.compile(optimizer=gdbench.optimizers.get(name), loss="mse", jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert model.jit_compile is jit_compile
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_trains_without_nan(name: str, policy: str) -> None:
    """Under a mixed policy the variables stay float32 and the optimizer steps them.

    mixed_float16 also wraps the optimizer in Keras's LossScaleOptimizer,
    which unscales the float16 gradients before gdbench's update.
    """
    keras.mixed_precision.set_global_policy(policy)
    x, y = _regression_data()
    model = _regression_model()
    model.compile(optimizer=gdbench.optimizers.get(name), loss="mse", jit_compile=False)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0]
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert model.layers[0].kernel.dtype == "float32"


@pytest.mark.parametrize("name", NAMES)
def test_learning_rate_can_be_set_between_steps(name: str) -> None:
    """``optimizer.learning_rate = η`` (as ReduceLROnPlateau does) takes effect at once.

    Two steps at the constructor's η, then three at η/4: the reference is fed
    the same piecewise rate. For rprop only the first step's η counts.
    """
    case = DEFAULT_CASES[name]
    grads = list(np.random.default_rng(6).normal(size=(5, 2, 3)))
    initial = np.random.default_rng(8).normal(size=(2, 3))
    variable = keras.Variable(initial, dtype="float64")
    optimizer = gdbench.optimizers.get(name)
    trajectory = []
    for step, grad in enumerate(grads):
        if step == 2:
            optimizer.learning_rate = case.learning_rate / 4
        optimizer.apply_gradients([(ops.convert_to_tensor(grad), variable)])
        trajectory.append(np.asarray(variable))
    expected = reference.run(
        name, initial, grads,
        lr=lambda step0: case.learning_rate if step0 < 2 else case.learning_rate / 4,
        **case.rule_hyperparameters,
    )
    np.testing.assert_allclose(np.stack(trajectory), expected, rtol=1e-9, atol=1e-12)


# --- configs and files --------------------------------------------------------


@pytest.mark.parametrize("lr_kind", ["constant", "schedule"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_config_round_trip(case: OptimizerCase, lr_kind: str) -> None:
    keywords = dict(case.keywords)
    if lr_kind == "schedule":
        keywords["learning_rate"] = _schedule()
    optimizer = gdbench.optimizers.get(case.name, **keywords)
    config = optimizer.get_config()
    for keyword, value in case.hyperparameters.items():
        if keyword == "learning_rate":
            if lr_kind == "constant":
                assert config[keyword] == pytest.approx(value, rel=1e-7)
            else:
                assert config[keyword] == keras.optimizers.schedules.serialize(_schedule())
        else:
            assert config[keyword] == value, keyword
    # Keras's `from_config` deserializes a schedule in place: hand it a copy.
    rebuilt = type(optimizer).from_config(copy.deepcopy(config))
    assert type(rebuilt) is type(optimizer)
    assert rebuilt.get_config() == config
    revived = gdbench.optimizers.get(keras.optimizers.serialize(optimizer))
    assert type(revived) is type(optimizer)
    assert revived.get_config() == config


def _assert_same_optimizer_state(
    reloaded: keras.optimizers.Optimizer, original: keras.optimizers.Optimizer
) -> None:
    """Every optimizer variable, in order, has the same dtype and the same bits.

    Compared by position: a reloaded model's layers may be named differently
    (``dense_1`` for ``dense``), and so may the slots.
    """
    assert len(reloaded.variables) == len(original.variables)
    for theirs, ours in zip(reloaded.variables, original.variables):
        assert theirs.name.split("_")[-1] == ours.name.split("_")[-1]
        assert theirs.dtype == ours.dtype, ours.path
        np.testing.assert_array_equal(np.asarray(theirs), np.asarray(ours), err_msg=ours.path)


@pytest.mark.parametrize("lr_kind", ["constant", "schedule"])
@pytest.mark.parametrize("name", NAMES)
def test_keras_file_round_trip_mid_training(name: str, lr_kind: str, tmp_path: Any) -> None:
    """Saved after 4 steps and reloaded, a model trains on exactly as the original.

    Both continue on the same batches, unshuffled: weights, every optimizer
    variable (iterations, slots, η) and the current η must be bit-identical.
    The models run eagerly, which spares three traces per case; graph mode is
    covered by the tests above.
    """
    x, y = _regression_data()
    learning_rate = _schedule() if lr_kind == "schedule" else DEFAULT_CASES[name].learning_rate
    model = _regression_model()
    model.compile(
        optimizer=gdbench.optimizers.get(name, learning_rate=learning_rate),
        loss="mse",
        run_eagerly=True,
    )
    model.fit(x[:32], y[:32], batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.optimizer) is type(model.optimizer)
    assert reloaded.optimizer.get_config() == model.optimizer.get_config()
    _assert_same_optimizer_state(reloaded.optimizer, model.optimizer)

    for trained in (model, reloaded):
        trained.fit(x[32:], y[32:], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) == 8
    for ours, theirs in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(theirs, ours)
    _assert_same_optimizer_state(reloaded.optimizer, model.optimizer)
    assert float(reloaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)


# --- sparse gradients ---------------------------------------------------------

VOCABULARY, WIDTH = 6, 3
# Index 1 appears five times, 2 and 4 twice; 3 and 5 never.
IDS = np.array([[1, 1, 2, 4, 1], [4, 0, 1, 1, 2]])
SPARSE_STEPS = 5
# The loss weights each position differently, so that the slices of a repeated
# index carry different values.
TARGETS = np.random.default_rng(5).normal(size=(*IDS.shape, WIDTH))
POSITION_WEIGHTS = np.arange(1.0, IDS.size + 1).reshape(IDS.shape)


def _embedding() -> keras.layers.Embedding:
    return keras.layers.Embedding(
        VOCABULARY, WIDTH, dtype="float64",
        embeddings_initializer=keras.initializers.RandomNormal(seed=3),
    )


def _embedding_steps(
    optimizer: keras.optimizers.Optimizer, densify: bool
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Train an Embedding on a batch with duplicate indices, ``SPARSE_STEPS`` steps.

    Returns the embedding after each step, the dense gradient of each step
    (slices summed per index, in numpy) and the initial embedding.
    """
    import tensorflow as tf

    layer = _embedding()
    layer.build(IDS.shape)
    initial = np.asarray(layer.embeddings)
    trajectory, dense_grads = [], []
    for _ in range(SPARSE_STEPS):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(POSITION_WEIGHTS[..., None] * (layer(IDS) - TARGETS) ** 2)
        (grad,) = tape.gradient(loss, [layer.embeddings.value])
        assert isinstance(grad, tf.IndexedSlices)
        dense = np.zeros((VOCABULARY, WIDTH))
        np.add.at(dense, grad.indices.numpy(), grad.values.numpy())
        dense_grads.append(dense)
        fed = tf.convert_to_tensor(grad) if densify else grad
        optimizer.apply_gradients([(fed, layer.embeddings)])
        trajectory.append(np.asarray(layer.embeddings))
    return trajectory, dense_grads, initial


@tensorflow_only
@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradient_gives_the_dense_formula(name: str) -> None:
    """IndexedSlices with duplicate indices step exactly as the dense gradient.

    The dense gradient sums the slices of a repeated index (in numpy here);
    the reference rule applied to it must give every step, rows that receive
    no gradient included (momentum and decay keep moving them).
    """
    case = DEFAULT_CASES[name]
    trajectory, dense_grads, initial = _embedding_steps(gdbench.optimizers.get(name), densify=False)
    expected = reference.run(
        name, initial, dense_grads, lr=lambda step0: case.learning_rate, **case.rule_hyperparameters
    )
    np.testing.assert_allclose(np.stack(trajectory), expected, rtol=1e-9, atol=1e-12)


def _embedding_gradient(embeddings: np.ndarray) -> np.ndarray:
    """∂L/∂E of the loss ``_fit_embedding`` trains on, in numpy.

    L = Σ_p w_p · mean_j (E[id_p, j] − t_pj)², so that row r receives
    Σ_{p: id_p = r} 2 w_p (E[r] − t_p) / WIDTH: one term per occurrence.
    """
    per_position = 2.0 * POSITION_WEIGHTS[..., None] * (embeddings[IDS] - TARGETS) / WIDTH
    gradient = np.zeros_like(embeddings)
    np.add.at(gradient, IDS, per_position)
    return gradient


@pytest.mark.parametrize("name", NAMES)
def test_fit_on_repeated_ids_follows_the_dense_formula(name: str) -> None:
    """An embedding looked up with repeated ids trains, through Keras's train step, as the dense formula.

    Under TensorFlow the gradient reaches the optimizer as row slices, under
    JAX and PyTorch as a dense array: on every backend each step must be the
    reference rule's step on the dense gradient. Keras's loss rounds through
    float32 under JAX (a relative 1e-7 in the gradient), hence a float32-sized
    tolerance; per-slice statistics would be off by more than 1e-3 (see
    ``test_keras_builtins_differ_on_duplicate_indices``).
    """
    case = DEFAULT_CASES[name]
    layer = _embedding()
    model = keras.Sequential([keras.Input(IDS.shape[1:], dtype="int32"), layer])
    model.compile(
        optimizer=gdbench.optimizers.get(name),
        loss=keras.losses.MeanSquaredError(reduction="sum", dtype="float64"),
    )
    initial = ops.convert_to_numpy(layer.embeddings)
    trajectory, grads = [], []
    for _ in range(SPARSE_STEPS):
        grads.append(_embedding_gradient(ops.convert_to_numpy(layer.embeddings)))
        model.train_on_batch(IDS, TARGETS, sample_weight=POSITION_WEIGHTS)
        trajectory.append(ops.convert_to_numpy(layer.embeddings))
    expected = reference.run(
        name, initial, grads, lr=lambda step0: case.learning_rate, **case.rule_hyperparameters
    )
    np.testing.assert_allclose(np.stack(trajectory), expected, rtol=1e-6, atol=1e-9)


@tensorflow_only
@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.Adam(learning_rate=0.01),
        lambda: keras.optimizers.RMSprop(learning_rate=0.01),
        lambda: keras.optimizers.Adagrad(learning_rate=0.01),
    ],
    ids=["Adam", "RMSprop", "Adagrad"],
)
def test_keras_builtins_differ_on_duplicate_indices(
    make_optimizer: Callable[[], keras.optimizers.Optimizer],
) -> None:
    """Keras's Adam, RMSprop and Adagrad square each slice, not each index's sum.

    On ``IndexedSlices`` they accumulate Σᵢ gᵢ² for a repeated index where the
    dense gradient gives (Σᵢ gᵢ)², and update only the rows present: their
    result on an embedding with duplicate indices is not the dense formula's,
    here by more than 1e-3 after 5 steps of η = 0.01. gdbench's optimizers
    densify first (see the test above).
    """
    sparse_trajectory, _, _ = _embedding_steps(make_optimizer(), densify=False)
    dense_trajectory, _, _ = _embedding_steps(make_optimizer(), densify=True)
    assert np.max(np.abs(sparse_trajectory[-1] - dense_trajectory[-1])) > 1e-3


# --- clipping -----------------------------------------------------------------

CLIP_STEPS = 8
CLIP_THRESHOLD = 1.0


def _clip(kind: str, grads: list[np.ndarray]) -> list[np.ndarray]:
    """Keras's three clippings, in numpy, of one step's gradients."""
    if kind == "clipvalue":
        return [np.clip(g, -CLIP_THRESHOLD, CLIP_THRESHOLD) for g in grads]
    if kind == "clipnorm":
        return [g * CLIP_THRESHOLD / max(np.linalg.norm(g), CLIP_THRESHOLD) for g in grads]
    global_norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * CLIP_THRESHOLD / max(global_norm, CLIP_THRESHOLD) for g in grads]


@pytest.mark.parametrize("kind", ["clipnorm", "clipvalue", "global_clipnorm"])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_clipping_is_honoured(name: str, kind: str) -> None:
    """The optimizer steps with the clipped gradients, per Keras's definitions.

    Under PyTorch, Keras's norm clipping divides by ``ops.maximum`` of the norm
    and the threshold, which its type promotion computes in float32 there.
    """
    exact = BACKEND != "torch" or kind == "clipvalue"
    tolerance = {"rtol": 1e-9 if exact else 1e-6, "atol": 1e-12}
    case = DEFAULT_CASES[name]
    rng = np.random.default_rng(9)
    shapes = [(3, 4), (4,)]
    grads = [[rng.normal(scale=2.0, size=shape) for shape in shapes] for _ in range(CLIP_STEPS)]
    clipped = [_clip(kind, step) for step in grads]
    clipped_count = sum(
        not np.allclose(c, g)
        for step, step_clipped in zip(grads, clipped)
        for c, g in zip(step_clipped, step)
    )
    assert clipped_count >= CLIP_STEPS
    initial = [rng.normal(size=shape) for shape in shapes]
    variables = [keras.Variable(value, dtype="float64") for value in initial]
    optimizer = gdbench.optimizers.get(name, **{kind: CLIP_THRESHOLD})
    trajectories: list[list[np.ndarray]] = [[] for _ in shapes]
    for step in grads:
        optimizer.apply_gradients(zip([ops.convert_to_tensor(g) for g in step], variables))
        for trajectory, variable in zip(trajectories, variables):
            trajectory.append(np.asarray(variable))
    for index, (start, trajectory) in enumerate(zip(initial, trajectories)):
        expected = reference.run(
            name, start, [step[index] for step in clipped],
            lr=lambda step0: case.learning_rate, **case.rule_hyperparameters,
        )
        np.testing.assert_allclose(np.stack(trajectory), expected, **tolerance)


# --- AdamW's exclusion list ---------------------------------------------------


def test_adamw_excluded_variables_are_not_decayed() -> None:
    """``exclude_from_weight_decay(var_names=["bias"])``: the kernel decays, the bias does not.

    With zero gradients Adam's step is 0/(0 + ε) = 0, so only the decay moves
    the weights: the kernel by (1 − η λ) per step, the bias not at all. With
    real gradients the kernel follows AdamW's reference and the bias Adam's.
    """
    eta, lam = 0.01, 0.5
    layer = keras.layers.Dense(2, bias_initializer="ones", dtype="float64")
    layer.build((None, 3))
    optimizer = gdbench.optimizers.get("adamw", learning_rate=eta, weight_decay=lam)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
    for _ in range(3):
        optimizer.apply_gradients([(ops.zeros_like(v.value), v) for v in (layer.kernel, layer.bias)])
    np.testing.assert_allclose(np.asarray(layer.kernel), kernel * (1 - eta * lam) ** 3, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(layer.bias), bias)

    layer = keras.layers.Dense(2, bias_initializer="ones", dtype="float64")
    layer.build((None, 3))
    optimizer = gdbench.optimizers.get("adamw", learning_rate=eta, weight_decay=lam)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
    rng = np.random.default_rng(4)
    grads = [(rng.normal(size=kernel.shape), rng.normal(size=bias.shape)) for _ in range(6)]
    trajectory = []
    for kernel_grad, bias_grad in grads:
        optimizer.apply_gradients(
            [
                (ops.convert_to_tensor(kernel_grad), layer.kernel),
                (ops.convert_to_tensor(bias_grad), layer.bias),
            ]
        )
        trajectory.append((np.asarray(layer.kernel), np.asarray(layer.bias)))
    adam_keywords = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
    constant = lambda step0: eta  # noqa: E731
    np.testing.assert_allclose(
        np.stack([k for k, _ in trajectory]),
        reference.adamw(
            kernel, [g for g, _ in grads], lr=constant, weight_decay=lam, **adam_keywords
        ),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        np.stack([b for _, b in trajectory]),
        reference.adam(bias, [g for _, g in grads], lr=constant, **adam_keywords),
        rtol=1e-9,
    )



def test_get_from_a_config_dict_leaves_the_dict_untouched() -> None:
    """Keras's from_config replaces a nested schedule config by the schedule object;
    gdbench.optimizers.get deserializes a copy, so the caller's dict stays reusable."""
    schedule = gdbench.schedules.get("cosine", initial_learning_rate=0.1, decay_steps=10)
    config = keras.optimizers.serialize(gdbench.optimizers.get("adam", learning_rate=schedule))
    before = copy.deepcopy(config)
    first, second = gdbench.optimizers.get(config), gdbench.optimizers.get(config)
    assert config == before
    assert first.get_config() == second.get_config()
