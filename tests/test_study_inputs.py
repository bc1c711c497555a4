"""Bad input: one clear line, exit status 2, nothing created, nothing written outside HOME."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gdbench import cli

TOY = """
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 3
trials = 2
{extra}
"""


@pytest.fixture()
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A working directory and a HOME inside it, neither holding anything yet."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return {"root": tmp_path, "cwd": cwd, "home": cwd / "home"}


def spec_file(where: dict[str, Path], extra: str = "", name: str = "probe") -> Path:
    path = where["root"] / f"{name}.toml"
    path.write_text(TOY.format(extra=extra), encoding="utf-8")
    return path


def every_file(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*"))


def run_cli(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = cli.main(arguments)
    captured = capsys.readouterr()
    return status, captured.err


BAD_SPECS = [
    pytest.param('name = "' + "x" * 500 + '"', "name: 'xxxx", id="name_too_long"),
    pytest.param('storage = "garbage://x"', "storage: garbage is not supported", id="dialect"),
    pytest.param('storage = "mysql+pymysql://u@127.0.0.1/db"', "storage: mysql is not supported",
                 id="unsupported_storage"),
    pytest.param('storage = "postgresql://u@127.0.0.1/db"', "postgresql+psycopg2://",
                 id="psycopg3_driver"),
    pytest.param('storage = "sqlite:////nonexistent/x/optuna.db"',
                 "storage: the folder of /nonexistent/x/optuna.db does not exist",
                 id="storage_folder_missing"),
    pytest.param('storage = "sqlite:///../../optuna.db"', "storage: '../../optuna.db' leads out "
                 "of HOME", id="storage_outside_home"),
    pytest.param('tracking = {tensorboard_dir = "../../x"}',
                 "tensorboard_dir: '../../x' leads out of HOME", id="tensorboard_outside_home"),
    pytest.param('tracking = {tensorboard_dir = "/nonexistent/x"}',
                 "tensorboard_dir: the folder of /nonexistent/x does not exist",
                 id="tensorboard_folder_missing"),
    pytest.param('tracking = {tracking_uri = "mysql://u@127.0.0.1/db"}',
                 "tracking_uri: the driver of 'mysql' is not installed", id="tracking_driver"),
    pytest.param('tracking = {tracking_uri = "garbage://x"}',
                 "tracking_uri: unknown database 'garbage'", id="tracking_dialect"),
    pytest.param('tracking = {tracking_uri = "./mlruns"}',
                 "tracking_uri: './mlruns': expected a database", id="tracking_file_store"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_SPECS)
def test_a_bad_spec_location_is_one_line_and_creates_nothing(
        extra: str, message: str, where: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = spec_file(where, extra)
    status, err = run_cli(["run", str(path), "--home", str(where["home"]), "--quiet"], capsys)
    assert status == cli.USAGE_ERROR, err
    assert err.count("\n") == 1 and err.startswith("gdbench: error: "), err
    assert message in err
    assert "Traceback" not in err
    assert every_file(where["root"]) == sorted([where["cwd"], path])
    assert not Path("/nonexistent").exists()


def damaged_sqlite(path: Path) -> None:
    """A SQLite database one of whose pages is overwritten, as a failing disk leaves it."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE rows (text TEXT)")
    connection.executemany("INSERT INTO rows VALUES (?)", [("x" * 200,)] * 2000)
    connection.commit()
    connection.close()
    with path.open("r+b") as file:
        file.seek(3 * 4096)
        file.write(bytes(range(256)) * 16)


@pytest.mark.parametrize(("damaged", "cause"), [
    pytest.param("optuna.db", "file is not a database", id="optuna_not_a_database"),
    pytest.param("mlflow.db", "btreeInitPage", id="mlflow_malformed"),
])
def test_a_damaged_store_is_one_line_naming_it_and_nothing_is_written(
        damaged: str, cause: str, where: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    home = where["home"]
    home.mkdir()
    store = home / damaged
    if damaged == "optuna.db":
        store.write_bytes(b"these are not the trials you are looking for" * 100)
    else:
        damaged_sqlite(store)
    before = store.read_bytes()
    status, err = run_cli(["run", str(spec_file(where)), "--home", str(home), "--quiet"], capsys)
    assert status == cli.USAGE_ERROR, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{store} is damaged (" in err and cause in err
    assert "move it away to start afresh" in err
    assert every_file(home) == [store] and store.read_bytes() == before


@pytest.mark.slow
def test_a_damaged_store_ends_the_gdbench_process_with_one_line(where: dict[str, Path]) -> None:
    home = where["home"]
    home.mkdir()
    damaged_sqlite(home / "mlflow.db")
    command = [sys.executable, "-m", "gdbench", "run", str(spec_file(where)), "--home", str(home)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GDBENCH_DEBUG": ""})
    assert done.returncode == cli.USAGE_ERROR
    assert done.stderr.startswith(f"gdbench: error: tracking_uri: {home / 'mlflow.db'} is damaged")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert every_file(home) == [home / "mlflow.db"]


@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_a_read_only_store_is_one_line_naming_it_and_nothing_is_written(
        read_only: str, where: dict[str, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    home = where["home"]
    path = spec_file(where)
    assert run_cli(["run", str(path), "--home", str(home), "--quiet"], capsys)[0] == 0
    before = {file: file.stat().st_mtime_ns for file in every_file(home)}
    store = home / "optuna.db"
    locked = store if read_only == "file" else home
    # As the system answers a user other than root for a file or folder without write
    # permission (root may write anything, and tests may run as root).
    access = os.access
    monkeypatch.setattr(os, "access", lambda target, mode, **kwargs: access(
        target, mode, **kwargs) and not (Path(target) == locked and mode & os.W_OK))
    status, err = run_cli(["run", str(path), "--home", str(home), "--quiet", "--trials", "4"],
                          capsys)
    assert status == cli.USAGE_ERROR, err
    assert err.count("\n") == 1 and str(store) in err and "is read-only" in err, err
    assert {file: file.stat().st_mtime_ns for file in every_file(home)} == before


@pytest.mark.parametrize("url", [
    pytest.param("http://127.0.0.1:9", id="mlflow_server"),
    pytest.param("postgresql+psycopg2://u:p@127.0.0.1:9/db", id="postgresql"),
])
def test_an_unreachable_server_is_one_line_within_15_s(
        url: str, where: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = spec_file(where)
    option = "--tracking-uri" if url.startswith("http") else "--storage"
    started = time.monotonic()
    status, err = run_cli(["run", str(path), "--home", str(where["home"]), option, url,
                           "--quiet"], capsys)
    assert time.monotonic() - started < 15
    assert status == cli.USAGE_ERROR and err.count("\n") == 1, err
    assert "cannot reach" in err and "127.0.0.1:9" in err
    assert every_file(where["root"]) == sorted([where["cwd"], path])


def test_relative_locations_resolve_against_home(where: dict[str, Path]) -> None:
    path = spec_file(where, 'storage = "sqlite:///db/studies.db"\n'
                            'tracking = {mlflow = false, tensorboard_dir = "boards/probe"}')
    assert cli.main(["run", str(path), "--home", str(where["home"]), "--quiet"]) == 0
    assert (where["home"] / "db" / "studies.db").is_file()
    assert (where["home"] / "boards" / "probe").is_dir()
    assert sorted(p.name for p in where["cwd"].iterdir()) == ["home"]


@pytest.mark.parametrize(("arguments", "message"), [
    pytest.param(["report", "../../x"], "STUDY: '../../x': use letters", id="study_name"),
    pytest.param(["report", "x" * 200], "is 200 characters long", id="study_name_length"),
    pytest.param(["report", "probe", "--out", "../../x"], "--out: '../../x' leads out of HOME",
                 id="report_out"),
])
def test_report_checks_its_study_name_and_output(
        arguments: list[str], message: str, where: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = spec_file(where, "tracking = {mlflow = false, tensorboard = false}")
    assert cli.main(["run", str(path), "--home", str(where["home"]), "--quiet"]) == 0
    capsys.readouterr()
    before = every_file(where["root"])
    status, err = run_cli([*arguments, "--home", str(where["home"])], capsys)
    assert status == cli.USAGE_ERROR and err.count("\n") == 1, err
    assert message in err
    assert every_file(where["root"]) == before


def test_no_traceback_reaches_the_terminal_unless_asked(where: dict[str, Path]) -> None:
    path = spec_file(where, 'storage = "garbage://x"')
    command = [sys.executable, "-m", "gdbench", "run", str(path), "--home", str(where["home"])]
    environment = {**os.environ, "GDBENCH_DEBUG": ""}
    quiet = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    assert quiet.returncode == cli.USAGE_ERROR
    assert "Traceback" not in quiet.stderr and "garbage is not supported" in quiet.stderr
    loud = subprocess.run(command[:3] + ["--debug"] + command[3:], capture_output=True, text=True,
                          env=environment, timeout=120)
    assert "Traceback" in loud.stderr and "StudyError" in loud.stderr
