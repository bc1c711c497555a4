"""``gdbench check-optimizer``: gdbench's generic checks pass on sound optimizers and name
the check and what differed on planted faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdbench import cli
from gdbench.tasks.optimizer_checks import CHECKS, check_optimizer

USER_FILE = Path(__file__).resolve().parent / "byo" / "my_optimizers.py"

FAULTS = '''
from keras import ops

import gdbench.optimizers


class ForgetfulConfig(gdbench.optimizers.Momentum):
    """Momentum whose get_config drops its momentum."""

    def get_config(self):
        config = super().get_config()
        del config["momentum"]
        return config


def forgets_a_slot(param, grad, slots, *, step, learning_rate, beta):
    m, v = slots
    m = beta * m + (1 - beta) * grad
    v = v + grad * grad
    return param - learning_rate * m / ops.sqrt(v + 1e-8), (m,)


ForgetsASlot = gdbench.optimizers.rule_optimizer(forgets_a_slot, slots=("m", "v"), beta=0.9)


def numpy_on_a_tensor(param, grad, slots, *, step, learning_rate):
    return param - learning_rate * np.sign(grad), slots


Untraceable = gdbench.optimizers.rule_optimizer(numpy_on_a_tensor)


def momentum_reference(param, grad, slots, *, step, learning_rate, momentum):
    (velocity,) = slots
    velocity = momentum * velocity + learning_rate * grad
    return param - velocity, (velocity,)


def wrong_reference(param, grad, slots, *, step, learning_rate, momentum):
    return param - learning_rate * grad, slots
'''


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.py"
    path.write_text(FAULTS, encoding="utf-8")
    return path


def statuses(results) -> dict[str, tuple[str, str]]:
    assert [r.check for r in results] == list(CHECKS)
    return {r.check: (r.status, r.detail) for r in results}


def test_a_sound_rule_passes_every_check_and_its_reference(faults: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("faults_reference", faults)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = statuses(check_optimizer(f"{USER_FILE}:HeavyBall",
                                     reference=module.momentum_reference))
    assert {check: status for check, (status, _) in found.items()} == \
        dict.fromkeys(CHECKS, "pass"), found
    wrong = statuses(check_optimizer(f"{USER_FILE}:HeavyBall", reference=module.wrong_reference))
    assert wrong["reference"][0] == "fail" and wrong["reference"][1].startswith("step 2: ")


def test_a_keras_class_skips_the_rule_checks_and_passes_the_others() -> None:
    found = statuses(check_optimizer("keras.optimizers.Lion"))
    assert found["trace"][0] == found["population"][0] == found["reference"][0] == "skip"
    assert all(found[check][0] == "pass"
               for check in ("config", "keras file", "xla", "float64", "sparse", "toy"))


def test_a_get_config_that_drops_a_keyword_fails_config(faults: Path) -> None:
    found = statuses(check_optimizer(f"{faults}:ForgetfulConfig"))
    assert found["config"] == ("fail", "get_config() lacks 'momentum', built with momentum = 0.45")
    assert found["keras file"][0] == "fail"


def test_a_rule_that_forgets_a_slot_fails_trace(faults: Path) -> None:
    found = statuses(check_optimizer(f"{faults}:ForgetsASlot"))
    assert found["trace"] == ("fail", "raised ValueError: rule 'forgets_a_slot' must return one "
                                      "new slot for each of its 2 slots (m, v), got 1")


def test_a_rule_that_cannot_be_traced_fails_trace_and_xla(faults: Path) -> None:
    found = statuses(check_optimizer(f"{faults}:Untraceable"))
    assert found["trace"][0] == "fail"
    assert "rule 'numpy_on_a_tensor' cannot be traced" in found["trace"][1]
    assert found["xla"][0] == "fail"


def test_the_command_prints_one_line_per_check_and_exits_1_on_a_failure(
        faults: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-optimizer", f"{faults}:ForgetfulConfig"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"forgetfulconfig ({faults}:ForgetfulConfig)"
    assert "FAIL config: get_config() lacks 'momentum', built with momentum = 0.45" in lines
    assert len(lines) == 1 + len(CHECKS)


def test_the_command_checks_a_spec_s_own_optimizers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "my_optimizers.py").write_text(USER_FILE.read_text(encoding="utf-8"),
                                               encoding="utf-8")
    spec = tmp_path / "spec.toml"
    spec.write_text('task = "sigmoid_neuron"\noptimizers = ["adam", '
                    '"my_optimizers.py:HeavyBall"]\n', encoding="utf-8")
    assert cli.main(["check-optimizer", str(spec)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"heavyball ({tmp_path / 'my_optimizers.py'}:HeavyBall)\n")
    assert "adam" not in out and "FAIL" not in out


def test_the_command_refuses_what_names_no_optimizer(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-optimizer", "keras.optimizers.Nope"]) == cli.USAGE_ERROR
    assert capsys.readouterr().err.strip() == (
        "gdbench: error: optimizer: 'keras.optimizers.Nope': keras.optimizers has no 'Nope'")


