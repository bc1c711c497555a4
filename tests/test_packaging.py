"""What pyproject.toml promises: the Python it needs, and the extras that bring PostgreSQL,
the ``cmaes`` and the ``gp`` samplers, each named by the error a missing one gives."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest

from gdbench.study.errors import SpecError, StudyError
from gdbench.study.plan import samplers
from gdbench.study.plan.loading import load_spec
from gdbench.study.trials import storage

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS = PROJECT["optional-dependencies"]


def distributions(requirements: list[str]) -> set[str]:
    """The distribution names of requirement strings, lower-case, extras and versions left out."""
    return {re.match(r"[A-Za-z0-9_.-]+(\[[^\]]*\])?", r).group(0).lower() for r in requirements}


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look not installed, to find_spec and to import alike."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name in modules else find_spec(name, *rest))
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_requires_python_is_the_one_the_readme_states() -> None:
    assert PROJECT["requires-python"] == ">=3.11"  # tomllib, and Keras 3.15
    assert "Python ≥ 3.11" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("sampler", sorted(samplers.SAMPLER_EXTRAS))
def test_each_sampler_extra_installs_the_modules_optuna_imports_for_it(sampler: str) -> None:
    extra, modules = samplers.SAMPLER_EXTRAS[sampler]
    # Each of these modules is shipped by the distribution of the same name.
    assert set(modules) <= distributions(EXTRAS[extra]), extra


def test_postgresql_is_an_extra_and_the_tests_install_it() -> None:
    assert not any(name.startswith("psycopg") for name in distributions(PROJECT["dependencies"]))
    assert distributions(EXTRAS["postgres"]) == {"psycopg2-binary"}
    assert "gdbench[postgres]" in distributions(EXTRAS["dev"])


@pytest.mark.parametrize("url", ["postgresql+psycopg2://u:p@127.0.0.1:9/db",
                                 "postgresql://u:p@127.0.0.1:9/db"])
def test_a_postgresql_url_without_its_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    hide(monkeypatch, "psycopg2", "psycopg")
    with pytest.raises(StudyError) as error:
        storage.check_database_url(url, "storage")
    message = str(error.value)
    assert message.startswith("storage: ") and "\n" not in message
    assert "pip install gdbench[postgres]" in message


@pytest.mark.parametrize("sampler, missing", [("cmaes", "cmaes"), ("gp", "torch")])
def test_a_spec_asking_for_a_sampler_whose_extra_is_missing_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampler: str, missing: str
) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(f'task = "sigmoid_neuron"\noptimizer = "gd"\nsampler = "{sampler}"\n',
                    encoding="utf-8")
    hide(monkeypatch, missing)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert error.value.field == "sampler"
    assert str(error.value) == (
        f"{path}: sampler: the {sampler} sampler needs {missing}, not installed: "
        f"pip install gdbench[{sampler}] (or use tpe, random, grid)"
    )


def test_make_sampler_refuses_a_sampler_whose_extra_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spec.toml"
    path.write_text('task = "sigmoid_neuron"\noptimizer = "gd"\n', encoding="utf-8")
    spec = load_spec(path)
    samplers.make_sampler(spec)  # the modules it imports are imported before any is hidden
    spec = dataclasses.replace(spec, sampler=dataclasses.replace(spec.sampler, name="gp"))
    hide(monkeypatch, "torch", "scipy")
    with pytest.raises(StudyError, match=r"^sampler: the gp sampler needs torch and scipy, "
                                         r"not installed: pip install gdbench\[gp\]"):
        samplers.make_sampler(spec)

