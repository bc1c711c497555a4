"""A malformed spec is refused before TensorFlow is imported, by every reader of a spec file;
a quiet study prints nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gdbench.optimizers
import gdbench.tasks
from gdbench.study.plan.brought import optimizer_names
from gdbench.study.plan.first_look import Names, built_names, first_look

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"

#: (spec text, the field its one line names).
MALFORMED = [
    ('task = "sigmoid_neuron"\noptimizer = "adam"\ntrails = 3\n', "trails"),
    ('task = "sigmoid_neuron"\noptimizer = "adamx"\n', "optimizer"),
    ('task = "sigmoid_neuron"\noptimizers = ["gd", {name = "nadamm"}]\n', "optimizers[1].name"),
    ('task = "sigmoid_neuronx"\noptimizer = "adam"\n', "task"),
    ('task = "sigmoid_neuron"\noptimizer = "adam"\ntracking = {mlflw = false}\n',
     "tracking.mlflw"),
    ('task = "sigmoid_neuron"\noptimizer = [\n', "(syntax)"),
]

#: Runs a command (``sys.argv[3:]``, ``SPEC`` and ``HOME`` standing for the spec and a home) in
#: this interpreter, then says what it imported.
PROBE = """
import json, sys
from gdbench import cli
spec, home = sys.argv[1:3]
status = cli.main([{"SPEC": spec, "HOME": home}.get(word, word) for word in sys.argv[3:]])
print(json.dumps({"status": status,
                  "imported": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
"""

#: Every command that reads a spec file; ``HOME`` is a folder it must not create.
COMMANDS = {
    "run": ["run", "SPEC", "--home", "HOME"],
    "create": ["create", "SPEC", "--storage", "sqlite:///HOME/optuna.db", "--home", "HOME"],
    "worker": ["worker", "SPEC", "--home", "HOME"],
    "check-optimizer": ["check-optimizer", "SPEC"],
    "check-task": ["check-task", "SPEC"],
}

#: Calls the Python API's readers of a spec file, then says what they imported and raised.
API_PROBE = """
import json, sys
from gdbench.study import SpecError, load_spec, load_specs
raised = []
for read in (load_spec, load_specs):
    try:
        read(sys.argv[1])
    except SpecError as error:
        raised.append(str(error))
print(json.dumps({"raised": raised,
                  "imported": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
"""


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def refused(tmp_path: Path, text: str, field: str, command: list[str]) -> None:
    """``command`` refuses the spec ``text`` with one line naming ``field`` and status 2,
    before TensorFlow or Keras is imported and before anything is written."""
    spec = tmp_path / "broken.toml"
    spec.write_text(text)
    done = subprocess.run([sys.executable, "-c", PROBE, str(spec), str(tmp_path / "home"),
                           *command], capture_output=True, text=True, env=environment(),
                          timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"status": 2, "imported": []}, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("gdbench: error:")]
    assert len(errors) == 1 and f"broken.toml: {field}: " in errors[0], done.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("text,field", MALFORMED, ids=[f for _, f in MALFORMED])
def test_a_malformed_spec_is_refused_before_tensorflow(tmp_path: Path, text: str,
                                                       field: str) -> None:
    refused(tmp_path, text, field, COMMANDS["run"])


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "run"])
@pytest.mark.parametrize("text,field", [MALFORMED[0], MALFORMED[2]],
                         ids=[MALFORMED[0][1], MALFORMED[2][1]])
def test_every_command_reading_a_spec_refuses_it_before_tensorflow(
        tmp_path: Path, command: str, text: str, field: str) -> None:
    refused(tmp_path, text, field, COMMANDS[command])


@pytest.mark.parametrize("text,field", MALFORMED, ids=[f for _, f in MALFORMED])
def test_the_python_api_refuses_a_malformed_spec_before_tensorflow(tmp_path: Path, text: str,
                                                                   field: str) -> None:
    spec = tmp_path / "broken.toml"
    spec.write_text(text)
    done = subprocess.run([sys.executable, "-c", API_PROBE, str(spec)], capture_output=True,
                          text=True, env=environment(), timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] == [], done.stderr
    assert len(result["raised"]) == 2 and len(set(result["raised"])) == 1
    assert f"broken.toml: {field}: " in result["raised"][0] and "\n" not in result["raised"][0]


def test_the_first_look_and_the_full_reading_give_one_line(tmp_path: Path) -> None:
    """An unknown optimizer gets the same line from both (the full reading also checks more)."""
    from gdbench.study import SpecError, load_spec

    spec = tmp_path / "broken.toml"
    spec.write_text(MALFORMED[1][0])
    with pytest.raises(SpecError) as full:
        load_spec(spec)
    with pytest.raises(SpecError) as first:
        first_look(spec, task_names(), optimizer_names())
    assert str(first.value) == str(full.value)


def task_names() -> Names:
    return Names("task", gdbench.tasks.names(), gdbench.tasks.plugin_names(),
                 gdbench.tasks.registry.PATH_FORMS)


@pytest.mark.parametrize("path", sorted(STUDIES.rglob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_spec_passes_the_first_look(path: Path) -> None:
    first_look(path, task_names(), optimizer_names())


def test_the_names_read_from_the_source_are_the_registries() -> None:
    assert built_names() == (task_names(), optimizer_names())


QUIET = """
import sys
from gdbench.study import load_spec, run_study
run_study(load_spec(sys.argv[1]), home=sys.argv[2], quiet=True)
import optuna
print("verbosity", optuna.logging.get_verbosity())
"""


@pytest.mark.slow
def test_quiet_prints_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "quiet.toml"
    spec.write_text('task = "sigmoid_neuron"\noptimizer = "gd"\ntrials = 4\nepochs = 20\n')
    done = subprocess.run([sys.executable, "-c", QUIET, str(spec), str(tmp_path / "home")],
                          capture_output=True, text=True, timeout=600,
                          env={**environment(), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr
    # What TensorFlow's native code writes when it is imported precedes the call.
    said = [line for line in done.stderr.splitlines()
            if "optuna" in line.lower() or "mlflow" in line.lower() or "study" in line.lower()]
    assert said == []
    assert done.stdout.strip() == "verbosity 20"  # Optuna's INFO, restored after the call
