"""The ``gdbench`` command: list, run, report, ui, and its one-line errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from gdbench import cli

UNTRACKED_TOY_SPEC = """
task = "sigmoid_neuron"
optimizers = ["gd", "momentum"]
epochs = 10
trials = 8
[tracking]
mlflow = false
tensorboard = false
"""


def test_list_prints_every_optimizer_schedule_and_task(capsys: pytest.CaptureFixture[str]) -> None:
    import gdbench.optimizers
    import gdbench.schedules
    import gdbench.tasks

    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in gdbench.optimizers.names() + gdbench.schedules.names() + gdbench.tasks.names():
        assert any(line.split()[:1] == [name] for line in lines), name
    assert "beta_2=0.999" in out  # keywords with their defaults
    assert "1-beta_2 log-spaced" in out  # the default search space
    assert "warmup_steps" in out and "subset=None" in out


@pytest.mark.parametrize("package", ["optimizers", "schedules", "tasks"])
def test_list_reads_from_the_source_what_the_imported_classes_say(package: str) -> None:
    import importlib
    import inspect

    from gdbench._package_source import REQUIRED, PackageSource

    imported = importlib.import_module(f"gdbench.{package}")
    source = PackageSource(package)
    registry = source.registry()
    assert list(registry) == list(imported.REGISTRY)
    for name, class_name in registry.items():
        cls = imported.REGISTRY[name]
        assert class_name == cls.__name__
        kinds = ("KEYWORD_ONLY",) if package == "tasks" else ("POSITIONAL_OR_KEYWORD",)
        expected = {p.name: REQUIRED if p.default is p.empty else p.default
                    for p in inspect.signature(cls.__init__).parameters.values()
                    if p.kind.name in kinds and p.name not in ("self", "name")}
        assert source.keywords(class_name, keyword_only=package == "tasks") == expected, name
        if package == "tasks":
            for attribute in ("default_epochs", "default_batch_size", "objective_metric"):
                assert source.attribute(class_name, attribute) == getattr(cls, attribute), name
            assert source.is_subclass(class_name, "ToyTask") == issubclass(cls, imported.ToyTask)


def test_list_imports_neither_keras_nor_tensorflow() -> None:
    probe = ("import sys\nfrom gdbench import cli\nassert cli.main(['list']) == 0\n"
             "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "[]"


def test_list_marks_the_samplers_not_installed_with_their_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name in ("cmaes", "torch") else find_spec(name, *rest))
    assert cli.main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ")}
    assert lines["tpe"].split() == ["tpe", "installed"]
    assert lines["cmaes"].endswith("not installed (needs cmaes): pip install gdbench[cmaes]")
    assert lines["gp"].endswith("not installed (needs torch): pip install gdbench[gp]")


def test_run_with_trials_resumes_and_report_prints_the_leaderboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "toy.toml"
    spec.write_text(UNTRACKED_TOY_SPEC, encoding="utf-8")
    home = tmp_path / "runs"

    assert cli.main(["run", str(spec), "--trials", "3", "--home", str(home), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "study toy (loss, minimize)" in out
    assert "rank  trial  state" in out
    assert out.rstrip().endswith(f"Next: gdbench ui --home {home}")
    storage = f"sqlite:///{home / 'optuna.db'}"
    assert len(optuna.load_study(study_name="toy", storage=storage).trials) == 3

    assert cli.main(["run", str(spec), "--trials", "5", "--home", str(home), "--quiet"]) == 0
    capsys.readouterr()
    trials = optuna.load_study(study_name="toy", storage=storage).trials
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3, 4]

    out_dir = tmp_path / "report"
    assert cli.main(["report", "toy", "--home", str(home), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("COMPLETE") == 5
    assert f"wrote {out_dir / 'leaderboard.csv'}" in out
    rows = (out_dir / "leaderboard.csv").read_text().splitlines()
    assert rows[0].startswith("rank,trial,state,value,optimizer,schedule")
    assert len(rows) == 6


def test_report_of_an_unknown_study_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "nothing", "--home", str(tmp_path)]) == cli.USAGE_ERROR
    assert capsys.readouterr().err.startswith("gdbench: error: no Optuna storage at ")

    optuna.create_study(study_name="other", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert cli.main(["report", "nothing", "--home", str(tmp_path)]) == cli.USAGE_ERROR
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "no study named 'nothing'" in error and "studies: other" in error


def test_bad_spec_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('task = "sigmoid_neuron"\noptimizer = "adam"\n'
                    '[search]\nbeta_1 = {low = 0.9, high = 1.5}\n')
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "gdbench", "run", str(spec), "--home", str(home)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("gdbench")]
    assert errors == [(f"gdbench: error: {spec}: search.beta_1.high: beta_1 is a decay rate: a "
                       "range needs 0 <= low < high < 1 (sampled as 1 - beta_1 on a log scale); "
                       "got [0.9, 1.5]")]
    assert "Traceback" not in done.stderr
    assert not home.exists()


def test_help_lists_the_commands() -> None:
    done = subprocess.run([sys.executable, "-m", "gdbench", "--help"], check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("run", "worker", "ui", "list", "report"):
        assert f"    {command} " in done.stdout


def test_ui_commands_serve_the_home_on_localhost(tmp_path: Path) -> None:
    assert cli.ui_commands(tmp_path, None) == []
    (tmp_path / "mlflow.db").touch()
    (tmp_path / "optuna.db").touch()
    (tmp_path / "tensorboard").mkdir()
    tools = {tool: (port, command) for tool, port, command in cli.ui_commands(tmp_path, 7000)}
    assert {tool: port for tool, (port, _) in tools.items()} == {
        "mlflow": 7000, "tensorboard": 7001, "optuna-dashboard": 7002}
    mlflow = tools["mlflow"][1]
    assert mlflow[:2] == ["mlflow", "server"]
    store = mlflow[mlflow.index("--backend-store-uri") + 1]
    assert store == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert mlflow[mlflow.index("--workers") + 1] == "1"
    for _, command in tools.values():
        assert command[command.index("--host") + 1] == "127.0.0.1"
    assert tools["tensorboard"][1][tools["tensorboard"][1].index("--logdir") + 1] == str(
        tmp_path.resolve() / "tensorboard")


def _mlflow_job_processes(home: Path, environment: dict[str, str]) -> list[str]:
    """Start ``gdbench ui`` on a home with an MLflow store only, wait until MLflow answers,
    and return the command lines of the processes under it that run MLflow's jobs."""
    import psutil
    import servers

    port = servers.free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "gdbench", "ui", "--home", str(home), "--port-base", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    try:
        servers.wait_until("mlflow", lambda: servers.http_ok(f"http://127.0.0.1:{port}/"),
                           ui, home / "logs" / "mlflow.log")
        lines = [" ".join(child.cmdline()) for child in psutil.Process(ui.pid).children(True)]
    finally:
        servers.stop_process(ui, first_signal=signal.SIGINT)
    return [line for line in lines if "huey" in line or "mlflow.server.jobs" in line]


@pytest.mark.slow
def test_ui_starts_mlflow_without_its_job_runners_unless_asked(tmp_path: Path) -> None:
    import servers

    (tmp_path / "mlflow.db").touch()
    environment = {key: value for key, value in servers.worker_environment().items()
                   if key != "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"}
    assert _mlflow_job_processes(tmp_path, environment) == []
    # A user who sets MLflow's own switch gets MLflow's job runners back.
    asked = {**environment, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
    assert _mlflow_job_processes(tmp_path, asked) != []


TWO_STUDIES = """\
[[study]]
name = "first"
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 20
trials = 4
tracking = {mlflow = false, tensorboard = false}

[[study]]
name = "second"
task = "sigmoid_neuron"
optimizer = "momentum"
epochs = 20
trials = 3
tracking = {mlflow = false, tensorboard = false}
"""


def test_jobs_run_a_specs_studies_at_once_each_output_whole(tmp_path: Path) -> None:
    spec = tmp_path / "two.toml"
    spec.write_text(TWO_STUDIES, encoding="utf-8")
    home = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "gdbench", "run", str(spec), "--home", str(home), "--jobs", "2"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for name, trials in (("first", 4), ("second", 3)):
        assert f"study {name}: started" in out and f"study {name}: done in " in out
        assert out.count(f"study {name} (loss, minimize)") == 1
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")
        assert len(study.trials) == trials
    # Each study's leaderboard follows its own "done" line, whole.
    first = out.index("study first: done")
    assert out.index("study first (loss, minimize)") > first
    assert out.count("Next: ") == 1 and out.rstrip().endswith(f"ui --home {home}")


def test_study_runs_one_study_of_a_spec_and_names_the_others_when_absent(tmp_path: Path) -> None:
    spec = tmp_path / "two.toml"
    spec.write_text(TWO_STUDIES, encoding="utf-8")
    home = tmp_path / "runs"
    assert cli.main(["run", str(spec), "--study", "second", "--home", str(home), "--quiet"]) == 0
    names = optuna.get_all_study_names(f"sqlite:///{home / 'optuna.db'}")
    assert names == ["second"]
    assert cli.main(["run", str(spec), "--study", "third", "--home", str(home)]) == cli.USAGE_ERROR


def test_an_interrupt_that_lands_in_a_garbage_collection_callback_is_delivered_again() -> None:
    """Python ignores an exception raised in a gc callback (as in TensorFlow's): the signal's
    handler raising ``Interrupted`` there would lose the interrupt, and the run go on."""
    import gc
    import signal
    import time

    from gdbench.study.errors import Interrupted

    landed: list[int] = []

    def collecting(phase: str, info: dict) -> None:
        if phase == "start" and not landed:
            landed.append(1)
            signal.raise_signal(signal.SIGTERM)  # its handler runs here, in the callback

    original = signal.getsignal(signal.SIGTERM)
    gc.callbacks.append(collecting)
    try:
        with pytest.raises(Interrupted) as caught, cli.interrupts_raised():
            gc.collect()
            time.sleep(5)  # the interrupt, signalled again, ends the wait
    finally:
        gc.callbacks.remove(collecting)
    assert landed and caught.value.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is original


def test_interrupts_raised_restores_the_handlers_and_the_hook() -> None:
    import signal

    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook)
    with cli.interrupts_raised():
        assert signal.getsignal(signal.SIGTERM) is not before[1]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
            sys.unraisablehook) == before
