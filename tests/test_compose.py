"""docker-compose.yml: valid against the Compose Specification, and the stack it promises.

The schema is the Compose Specification's own JSON schema, as vendored by
``check-jsonschema`` (offline). The checks after it are what
docs/distributed.md says of the stack: which services, which healthchecks,
GPU workers, no database port on the host, UIs on 127.0.0.1, the study
created before any worker starts.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
UI_PORTS = {"mlflow": 5000, "tensorboard": 6006, "optuna-dashboard": 8080}

#: ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?error}``, ``${NAME?error}``.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<kind>:?[-?])(?P<value>[^}]*))?\}")


def interpolate(value: Any, environment: dict[str, str]) -> Any:
    """Compose's variable substitution, recursively: set variables, else the defaults."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, kind, default = match["name"], match["kind"], match["value"] or ""
        if name in environment and (environment[name] or kind not in (":-", ":?")):
            return environment[name]
        if kind in (":?", "?"):
            raise KeyError(f"{name}: {default}")
        return default if kind in (":-", "-") else ""

    return VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as Compose reads it with the required variables set and every default taken."""
    return interpolate(raw, {"POSTGRES_PASSWORD": "secret", "GDBENCH_SPEC": "studies/x.toml"})


def test_compose_file_is_valid_against_the_compose_specification(raw: dict[str, Any],
                                                                 compose: dict[str, Any]) -> None:
    import jsonschema

    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(raw)]
    assert errors == []
    assert list(validator.iter_errors(compose)) == []
    # The validator does reject a broken file.
    broken = {**raw, "services": {**raw["services"], "worker": {**raw["services"]["worker"],
                                                                "restart": 3}}}
    assert list(validator.iter_errors(broken))


def test_the_required_variables_are_required(raw: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(raw, {"GDBENCH_SPEC": "studies/x.toml"})
    with pytest.raises(KeyError, match="GDBENCH_SPEC"):
        interpolate(raw, {"POSTGRES_PASSWORD": "secret"})


def test_services_and_their_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert sorted(services) == ["create", "mlflow", "optuna-dashboard", "postgres", "tensorboard",
                                "worker"]
    assert services["postgres"]["image"].startswith("postgres:")
    for name in ("mlflow", "tensorboard", "optuna-dashboard"):
        assert services[name]["build"]["target"] == "servers"
    for name in ("create", "worker"):
        assert services[name]["build"]["target"] == "gdbench"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \S+ AS servers$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM servers AS gdbench$", dockerfile, re.MULTILINE)
    assert "tensorflow[and-cuda]" in dockerfile


def test_long_running_services_have_healthchecks_and_restart(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "mlflow", "tensorboard", "optuna-dashboard"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped", name
    assert "pg_isready -h 127.0.0.1" in services["postgres"]["healthcheck"]["test"][1]
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert services["worker"]["restart"] == "on-failure"
    assert services["create"]["restart"] == "no"


def test_workers_reserve_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    (device,) = compose["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == 1 or device["count"] == "all"
    assert compose["services"]["worker"]["environment"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_the_database_is_not_published_and_the_uis_only_on_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["postgres"]
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert {name for name, ports in published.items() if ports} == set(UI_PORTS)
    for name, port in UI_PORTS.items():
        assert published[name] == [f"127.0.0.1:{port}:{port}"], name
    # Inside the network the servers listen on every interface, for the other services.
    assert "0.0.0.0" in services["mlflow"]["command"]


def test_secrets_come_from_the_env_file(raw: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    assert "${POSTGRES_PASSWORD:?" in text
    assert "secret" not in text and "change-this-password" not in text
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    used = {match["name"] for match in VARIABLE.finditer(text)}
    assert used <= set(example), sorted(used - set(example))
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored


def test_the_study_is_created_before_any_worker_starts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["worker"]["depends_on"]["create"] == {
        "condition": "service_completed_successfully"}
    assert services["worker"]["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    assert services["create"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                "mlflow": {"condition": "service_healthy"}}
    assert services["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["optuna-dashboard"]["depends_on"]["create"] == {
        "condition": "service_completed_successfully"}


def test_mlflow_serves_artifacts_from_postgres_for_small_hosts(compose: dict[str, Any]) -> None:
    command = compose["services"]["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert option("--backend-store-uri").startswith("postgresql+psycopg2://gdbench:secret@postgres:5432/")
    assert "--serve-artifacts" in command
    artifacts = option("--artifacts-destination")
    assert any(volume.endswith(f":{artifacts}") for volume in compose["services"]["mlflow"]["volumes"])
    assert option("--workers") == "2"
    assert {"mlflow:5000", "127.0.0.1:*", "localhost:*"} <= set(option("--allowed-hosts").split(","))


def test_the_commands_are_those_of_gdbench(compose: dict[str, Any]) -> None:
    from gdbench.cli import build_parser

    parser = build_parser()
    storage = "postgresql+psycopg2://gdbench:secret@postgres:5432/optuna"
    for name in ("create", "worker"):
        command = compose["services"][name]["command"]
        assert command[0] == "gdbench"
        arguments = parser.parse_args(command[1:])
        assert arguments.command == name
        assert arguments.storage == storage
        assert arguments.tracking_uri == "http://mlflow:5000"
        assert arguments.spec == Path("studies/x.toml")
        assert arguments.home == Path("/runs")
    worker = parser.parse_args(compose["services"]["worker"]["command"][1:])
    assert worker.grace_period > worker.heartbeat_interval
    assert compose["services"]["optuna-dashboard"]["command"][-1] == storage
    # Workers write the logs that TensorBoard reads.
    assert "runs:/runs" in compose["services"]["worker"]["volumes"]
    assert "runs:/runs:ro" in compose["services"]["tensorboard"]["volumes"]
    assert compose["services"]["tensorboard"]["command"][:3] == ["tensorboard", "--logdir",
                                                                 "/runs/tensorboard"]
