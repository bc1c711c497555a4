"""gdbench on a GPU, through Keras's JAX backend (and PyTorch's where it is installed).

The GPU machines have JAX, PyTorch and CUDA but no TensorFlow; gdbench's
optimizers run under every Keras backend, so they are checked there. Keras
picks its backend once per process: each backend runs in a child process of
this script, and their results make one table:

- the device's name;
- every optimizer × hyperparameter set of ``tests/optimizer_cases.py``,
  ``REFERENCE_STEPS`` float32 steps on the device against the independent numpy
  reference of ``tests/reference_optimizers.py``, within the tests' float32
  bound (``optimizer_cases.float32_bound``): the worst error/bound ratio, ≤ 1;
- gdbench/Keras step time for the eleven algorithms Keras also ships
  (``optimizer_step.PAIRS``) on an MLP of about 25 M parameters and a small
  CNN, batch 256, float32 and mixed bfloat16, paired and interleaved
  (``optimizer_step.paired_times``): target ≤ 1.02;
- the bytes per second of Adam's update (gdbench's and Keras's) on 100 M
  float32 parameters, against the copy bandwidth measured in the same run:
  target ≥ 50 % (an update reads the parameter, gradient, m and v and writes
  three of them, 28 bytes per parameter; a copy moves 8).

    python benchmarks/gpu_check.py                  # a GPU machine, under 8 minutes
    python benchmarks/gpu_check.py --smoke          # tiny sizes on any CPU, to keep it working

It runs without an installed gdbench (the repository root goes on the path) and
without TensorFlow. ``docs/backends.md`` says how to bring Keras to a machine without a
network. Exits 1 if a reference check fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("jax", "torch")
REFERENCE_STEPS = 40
RATIO_TARGET = 1.02
BANDWIDTH_TARGET = 0.5
#: Bytes one Adam update moves per float32 parameter: reads w, g, m, v; writes w, m, v.
ADAM_BYTES_PER_PARAMETER = 7 * 4
#: Bytes a copy moves per float32 element: one read, one write.
COPY_BYTES_PER_ELEMENT = 2 * 4


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big and how long each measurement is."""

    mlp_hidden: tuple[int, ...]
    image: tuple[int, int, int]
    cnn_filters: tuple[int, int, int]
    cnn_dense: int
    batch_size: int
    steps: int
    repeats: int
    update_parameters: int
    update_iterations: int
    algorithms: tuple[str, ...] | None  # None: every pair Keras ships


# 784·4096 + 4096·4096 + 4096·1024 + 1024·10 + biases = 24.2 M parameters; the
# CNN has 1.7 M, most of them in its first dense layer.
FULL = Sizes(
    mlp_hidden=(4096, 4096, 1024), image=(32, 32, 3), cnn_filters=(32, 64, 128),
    cnn_dense=256, batch_size=256, steps=20, repeats=5,
    update_parameters=100_000_000, update_iterations=20, algorithms=None,
)
SMOKE = Sizes(
    mlp_hidden=(32,), image=(8, 8, 3), cnn_filters=(4, 4, 4), cnn_dense=8, batch_size=16,
    steps=3, repeats=1, update_parameters=100_000, update_iterations=2,
    algorithms=("gd", "adam"),
)


@dataclasses.dataclass
class Row:
    """One line of the table."""

    backend: str
    check: str
    subject: str
    result: str
    target: str
    verdict: str


# --- measurements, in a child process whose Keras runs on one backend ---------


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.device_kind} ({device.platform}, jax {jax.__version__})"
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (cuda, torch {torch.__version__})"
    return f"{platform.processor() or 'CPU'} (cpu, torch {torch.__version__})"


def _synchronize(backend: str, value: Any) -> None:
    """Wait until the device has computed ``value``."""
    if backend == "jax":
        import jax

        jax.block_until_ready(value)
    else:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def reference_rows(backend: str) -> tuple[list[Row], bool]:
    """Every optimizer's float32 trajectories on the device against the numpy reference."""
    import keras
    import numpy as np
    import reference_optimizers as reference
    from optimizer_cases import CASES, NAMES, float32_bound

    import gdbench.optimizers

    rng = np.random.default_rng(7)
    shape = (64, 64)
    initial = rng.normal(size=shape)
    # Element scales from 1e-2 to 3, so that ε = 1e-3 matters for some elements only.
    grads = rng.normal(size=(REFERENCE_STEPS, *shape)) * 10.0 ** rng.uniform(-2.0, 0.5, size=shape)
    worst: dict[str, float] = {name: 0.0 for name in NAMES}
    for case in CASES:
        optimizer = gdbench.optimizers.get(case.name, **case.keywords)
        variable = keras.Variable(initial, dtype="float32")
        trajectory = []
        for grad in grads:
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad, "float32"), variable)])
            trajectory.append(keras.ops.convert_to_numpy(variable))
        expected = reference.run(
            case.name, initial, grads, lr=lambda step0, case=case: case.learning_rate,
            dtype=np.float32, **case.rule_hyperparameters,
        )
        error = np.abs(np.stack(trajectory).astype(np.float64) - expected.astype(np.float64))
        ratio = float(np.max(error / float32_bound(case, initial, expected)))
        worst[case.name] = max(worst[case.name], ratio)
    cases_per_name = {name: sum(case.name == name for case in CASES) for name in NAMES}
    rows = [
        Row(
            backend, "reference, float32", f"{name} ({cases_per_name[name]} sets, {REFERENCE_STEPS} steps)",
            f"worst error/bound {ratio:.3f}",
            "≤ 1 (bound: 1e-5·|w| + 1e-6 + decay budget)",
            "pass" if ratio <= 1.0 else "FAIL",
        )
        for name, ratio in worst.items()
    ]
    return rows, all(ratio <= 1.0 for ratio in worst.values())


def _mlp(sizes: Sizes) -> tuple[Callable[[], Any], tuple[int, ...], int]:
    import keras

    def build() -> keras.Model:
        keras.utils.set_random_seed(0)
        layers = [keras.Input((784,))]
        layers += [keras.layers.Dense(width, activation="relu") for width in sizes.mlp_hidden]
        return keras.Sequential(layers + [keras.layers.Dense(10)])

    return build, (784,), build().count_params()


def _cnn(sizes: Sizes) -> tuple[Callable[[], Any], tuple[int, ...], int]:
    import keras

    first, second, third = sizes.cnn_filters

    def build() -> keras.Model:
        keras.utils.set_random_seed(0)
        return keras.Sequential([
            keras.Input(sizes.image),
            keras.layers.Conv2D(first, 3, activation="relu"),
            keras.layers.Conv2D(second, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(third, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(sizes.cnn_dense, activation="relu"),
            keras.layers.Dense(10),
        ])

    return build, sizes.image, build().count_params()


def step_time_rows(backend: str, sizes: Sizes, smoke: bool) -> list[Row]:
    """gdbench/Keras step-time ratios, every pair × model × precision."""
    import keras
    import numpy as np
    from optimizer_step import PAIRS, paired_times

    import gdbench.optimizers

    rows = []
    algorithms = sizes.algorithms or tuple(PAIRS)
    for model_name, (build, input_shape, parameters) in (("MLP", _mlp(sizes)), ("CNN", _cnn(sizes))):
        rng = np.random.default_rng(0)
        count = sizes.steps * sizes.batch_size
        x = rng.standard_normal((count, *input_shape)).astype("float32")
        y = rng.integers(0, 10, count)
        for policy in ("float32", "mixed_bfloat16"):
            for name in algorithms:
                keras.mixed_precision.set_global_policy(policy)
                keywords, keras_factory = PAIRS[name]
                models = []
                for optimizer in (gdbench.optimizers.get(name, **keywords), keras_factory()):
                    model = build()
                    model.compile(
                        optimizer=optimizer,
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    )
                    models.append(model)
                times = paired_times(*models, x, y, repeats=sizes.repeats, batch_size=sizes.batch_size)
                keras.mixed_precision.set_global_policy("float32")
                keras.backend.clear_session()
                ratio = times["ratio"]
                rows.append(Row(
                    backend, f"step time, {policy}",
                    f"{name}, {model_name} of {parameters:,} parameters, batch {sizes.batch_size}",
                    f"gdbench/Keras {ratio:.3f} ({times['ours_ms']:.2f} / {times['keras_ms']:.2f} ms)",
                    f"≤ {RATIO_TARGET}", _verdict(ratio <= RATIO_TARGET, smoke),
                ))
    return rows


def _seconds_per_call(backend: str, call: Callable[[], Any], iterations: int) -> float:
    _synchronize(backend, call())
    start = time.perf_counter()
    for _ in range(iterations):
        result = call()
    _synchronize(backend, result)
    return (time.perf_counter() - start) / iterations


def _update_call(backend: str, optimizer: Any, parameters: int) -> Callable[[], Any]:
    """One optimizer update of a ``parameters``-long float32 variable, as fit would run it.

    Under JAX, ``fit`` compiles the update with the rest of the step: here it
    is the compiled ``stateless_apply``, its buffers donated so that it updates
    in place. PyTorch runs it eagerly.
    """
    import keras

    variable = keras.Variable(keras.ops.zeros((parameters,)), dtype="float32")
    gradient = keras.random.normal((parameters,), seed=0)
    optimizer.build([variable])
    if backend != "jax":

        def eager_call() -> Any:
            optimizer.apply_gradients([(gradient, variable)])
            return variable.value

        return eager_call
    import jax

    apply = jax.jit(optimizer.stateless_apply, donate_argnums=(0, 2))
    state = {"model": [variable.value], "optimizer": [v.value for v in optimizer.variables]}

    def call() -> Any:
        state["model"], state["optimizer"] = apply(state["optimizer"], [gradient], state["model"])
        return state["model"][0]

    return call


def bandwidth_rows(backend: str, sizes: Sizes, smoke: bool) -> list[Row]:
    """Adam's update in bytes per second against the device's copy bandwidth."""
    import keras

    import gdbench.optimizers

    n = sizes.update_parameters
    source = keras.random.normal((n,), seed=1)
    # A negation is a copy that no compiler can elide: one read, one write.
    negate = keras.ops.negative
    if backend == "jax":
        import jax

        negate = jax.jit(negate)
    copy_rate = COPY_BYTES_PER_ELEMENT * n / _seconds_per_call(
        backend, lambda: negate(source), sizes.update_iterations
    )
    rows = [Row(backend, "copy bandwidth", f"{n / 1e6:g} M float32", f"{copy_rate / 1e9:.1f} GB/s", "", "")]
    for label, optimizer in (
        ("gdbench adam", gdbench.optimizers.get("adam")),
        ("Keras Adam", keras.optimizers.Adam(epsilon=1e-8)),
    ):
        seconds = _seconds_per_call(backend, _update_call(backend, optimizer, n), sizes.update_iterations)
        rate = ADAM_BYTES_PER_PARAMETER * n / seconds
        fraction = rate / copy_rate
        rows.append(Row(
            backend, "update bandwidth", f"{label}, {n / 1e6:g} M float32 parameters",
            f"{rate / 1e9:.1f} GB/s = {fraction:.2f} of copy ({seconds * 1e3:.2f} ms)",
            f"≥ {BANDWIDTH_TARGET}", _verdict(fraction >= BANDWIDTH_TARGET, smoke),
        ))
    keras.backend.clear_session()
    return rows


def _verdict(met: bool, smoke: bool) -> str:
    if smoke:
        return "smoke (no target)"
    return "met" if met else "over target: see notes"


def run_child(backend: str, smoke: bool, output: Path) -> None:
    """Every measurement on the backend this process's Keras runs on, written to ``output``.

    TensorFlow is made unimportable first: the GPU machines have none, and
    Keras, finding it, would use it for its data pipelines.
    """
    sys.modules["tensorflow"] = None
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    sizes = SMOKE if smoke else FULL
    start = time.perf_counter()
    rows = [Row(backend, "device", _device_name(backend), "", "", "")]
    checked, passed = reference_rows(backend)
    rows += checked
    rows += step_time_rows(backend, sizes, smoke)
    rows += bandwidth_rows(backend, sizes, smoke)
    rows.append(Row(backend, "wall time", "this backend", f"{time.perf_counter() - start:.0f} s", "", ""))
    output.write_text(json.dumps({"passed": passed, "rows": [dataclasses.asdict(r) for r in rows]}))


# --- the driver -----------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | check | subject | result | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.backend} | {r.check} | {r.subject} | {r.result} | {r.target} | {r.verdict} |" for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds per backend")
    parser.add_argument(
        "--backends", nargs="*", choices=BACKENDS,
        default=[b for b in BACKENDS if importlib.util.find_spec(b) is not None],
        help="default: those that import here",
    )
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"), help="default: ./gpu_check.md")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.smoke, args.child_output)
        return 0

    rows: list[Row] = []
    passed = True
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as scratch:
            output = Path(scratch) / "rows.json"
            command = [sys.executable, __file__, "--child", backend, "--child-output", str(output)]
            # Everything is float32: JAX needs no x64.
            environment = {**os.environ, "KERAS_BACKEND": backend}
            done = subprocess.run(command + (["--smoke"] if args.smoke else []), env=environment)
            if done.returncode != 0:
                rows.append(Row(backend, "run", "child process", f"exit {done.returncode}", "0", "FAIL"))
                passed = False
                continue
            result = json.loads(output.read_text())
        rows += [Row(**row) for row in result["rows"]]
        passed = passed and result["passed"]
    text = table(rows)
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0 if passed and rows else 1


if __name__ == "__main__":
    sys.exit(main())
