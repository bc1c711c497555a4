"""gdbench's optimizers under Keras's names: registered as ``gdbench>ClassName``, found by
``keras.optimizers.get`` and ``deserialize``, loaded from a ``.keras`` file by a process that
imported ``gdbench.optimizers``; a readable ``repr``; error messages that list only what is
accepted."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import keras
import pytest
from optimizer_cases import CASES, NAMES, OptimizerCase

import gdbench.optimizers
import gdbench.schedules

#: A valid value, away from Keras's default, of each Keras base keyword.
BASE_VALUES: dict[str, Any] = {
    "weight_decay": 0.05, "clipnorm": 1.0, "clipvalue": 0.5, "global_clipnorm": 2.0,
    "use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 10,
    "loss_scale_factor": 128.0, "gradient_accumulation_steps": 2,
}


def test_base_values_cover_the_base_keywords() -> None:
    assert set(BASE_VALUES) == set(gdbench.optimizers._base.BASE_KEYWORDS)


@pytest.mark.parametrize("name", NAMES)
def test_registered_under_the_package_and_the_class_name(name: str) -> None:
    cls = gdbench.optimizers.REGISTRY[name]
    assert keras.saving.get_registered_name(cls) == f"gdbench>{cls.__name__}"
    assert keras.saving.get_registered_object(f"gdbench>{cls.__name__}") is cls


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_keras_get_and_deserialize_find_the_registered_name(case: OptimizerCase) -> None:
    optimizer = gdbench.optimizers.get(case.name, **case.keywords)
    cls = type(optimizer)
    registered = f"gdbench>{cls.__name__}"
    assert type(keras.optimizers.get(registered)) is cls
    for config in ({"class_name": registered, "config": optimizer.get_config()},
                   keras.optimizers.serialize(optimizer)):
        rebuilt = keras.optimizers.deserialize(config)
        assert type(rebuilt) is cls
        assert rebuilt.get_config() == optimizer.get_config()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_repr_shows_the_algorithm_keywords_and_rebuilds_the_optimizer(case: OptimizerCase) -> None:
    optimizer = gdbench.optimizers.get(case.name, **case.keywords)
    text = repr(optimizer)
    cls = type(optimizer)
    own = [p for p in inspect.signature(cls.__init__).parameters
           if p not in ("self", "name", "kwargs")]
    assert re.fullmatch(rf"{cls.__name__}\(learning_rate=.*\)", text), text
    assert [part.split("=")[0] for part in text[len(cls.__name__) + 1:-1].split(", ")] == own
    rebuilt = eval(text, vars(gdbench.optimizers))
    assert type(rebuilt) is cls
    assert rebuilt.get_config() == optimizer.get_config()


def test_repr_of_a_schedule_and_of_base_keywords_set_away_from_their_defaults() -> None:
    schedule = gdbench.schedules.get("cosine", initial_learning_rate=0.1, decay_steps=100)
    optimizer = gdbench.optimizers.get("adam", learning_rate=schedule, epsilon=1e-7,
                                       clipnorm=1.0, name="tuned")
    assert repr(optimizer) == (
        "Adam(learning_rate=CosineDecay(initial_learning_rate=0.1, decay_steps=100.0, alpha=0.0), "
        "beta_1=0.9, beta_2=0.999, epsilon=1e-07, bias_correction=True, name='tuned', clipnorm=1.0)"
    )
    rebuilt = eval(repr(optimizer), {**vars(gdbench.optimizers), **vars(gdbench.schedules)})
    assert repr(rebuilt) == repr(optimizer)


@pytest.mark.parametrize("name", NAMES)
def test_every_keyword_the_error_message_lists_is_accepted(name: str) -> None:
    with pytest.raises(ValueError, match="unknown keyword") as error:
        gdbench.optimizers.get(name, lr=0.1)
    listed = str(error.value).split("accepted: ")[1].split(", ")
    assert listed == gdbench.optimizers.REGISTRY[name].keywords()
    defaults = {p.name: p.default for p in
                inspect.signature(gdbench.optimizers.REGISTRY[name].__init__).parameters.values()}
    for keyword in listed:
        value = BASE_VALUES.get(keyword, defaults.get(keyword))
        if keyword == "name":
            value = "named"
        optimizer = gdbench.optimizers.get(name, **{keyword: value})
        assert optimizer.get_config()[keyword] == value, keyword


@pytest.mark.parametrize("name", [name for name in NAMES if name != "adamw"])
def test_weight_decay_is_listed_by_no_optimizer_that_refuses_it(name: str) -> None:
    assert "weight_decay" not in gdbench.optimizers.REGISTRY[name].keywords()
    with pytest.raises(ValueError, match="weight_decay"):
        gdbench.optimizers.get(name, weight_decay=BASE_VALUES["weight_decay"])


SAVE = """
import keras, numpy as np
import gdbench.optimizers, gdbench.schedules
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
schedule = gdbench.schedules.get("warmup", warmup_steps=2, target=0.01)
model.compile(optimizer=gdbench.optimizers.get("nadam", learning_rate=schedule), loss="mse")
model.fit(np.ones((8, 3)), np.zeros((8, 1)), epochs=2, verbose=0)
model.save({path!r})
print(repr(model.optimizer))
"""

LOAD = """
import keras
{imports}
model = keras.saving.load_model({path!r})
print(repr(model.optimizer), int(model.optimizer.iterations))
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=240, check=False)


@pytest.mark.slow
def test_a_keras_file_loads_in_a_fresh_process_that_imports_gdbench_optimizers(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "model.keras")
    saved = _python(SAVE.format(path=path))
    assert saved.returncode == 0, saved.stderr
    optimizer = saved.stdout.splitlines()[-1]
    assert optimizer.startswith("Nadam(learning_rate=LinearWarmup(target=0.01, warmup_steps=2")

    loaded = _python(LOAD.format(imports="import gdbench.optimizers", path=path))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines()[-1] == f"{optimizer} 2"

    unknown = _python(LOAD.format(imports="", path=path))
    assert unknown.returncode != 0
    assert "TypeError: Could not locate class 'Nadam'." in unknown.stderr
