"""Optimizers an installed distribution brings through the ``gdbench.optimizers`` entry points.

A throwaway distribution (a ``*.dist-info`` folder with ``entry_points.txt``, and its
module) in a folder put on ``sys.path`` stands for ``pip install``: no network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gdbench.optimizers
from gdbench import cli
from plugin_dists import install
from gdbench.study import SpecError, load_spec

PLUGIN_MODULE = '''
from keras import ops

import gdbench.optimizers


def signum(param, grad, slots, *, step, learning_rate, beta):
    """Signum: m ← β m + (1 − β) g ; w ← w − η sign(m)."""
    (m,) = slots
    m = beta * m + (1 - beta) * grad
    return param - learning_rate * ops.sign(m), (m,)


Signum = gdbench.optimizers.rule_optimizer(signum, slots=("m",), learning_rate=1e-3, beta=0.9)
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``sys.path`` holding the ``gdbench-signum`` distribution."""
    folder = tmp_path / "site"
    install(folder, "gdbench-signum", {"signum": "gdbench_signum:Signum"}, PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_an_installed_plugin_is_found_by_name(site: Path) -> None:
    found = gdbench.optimizers.source("signum")
    assert found.origin == "plugin gdbench-signum 0.1 (gdbench_signum:Signum)"
    assert found.vectorizable and not found.built_in
    assert found.hyperparameters() == {"learning_rate": 1e-3, "beta": 0.9}
    assert "signum" in gdbench.optimizers.plugins()
    assert type(gdbench.optimizers.get("signum", beta=0.5)).__name__ == "Signum"


def test_a_spec_names_a_plugin_beside_a_built_in(site: Path, tmp_path: Path) -> None:
    path = tmp_path / "plugin.toml"
    path.write_text('task = "sigmoid_neuron"\noptimizers = ["adam", "signum"]\n', encoding="utf-8")
    spec = load_spec(path)
    assert [o.label for o in spec.optimizers] == ["adam", "signum"]
    signum = spec.optimizers[1]
    assert signum.name == "signum" and set(signum.space) == {"learning_rate", "beta"}


def test_gdbench_list_lists_the_plugin(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.split()[:1] == ["signum"]]
    assert "gdbench-signum 0.1 (gdbench_signum:Signum)" in line and "refused" not in line


def test_a_name_two_plugins_claim_is_refused_naming_both(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    install(other, "other-signum", {"signum": "other_signum:Signum"}, PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(other))
    with pytest.raises(ValueError) as error:
        gdbench.optimizers.source("signum")
    message = str(error.value)
    assert "plugin gdbench-signum 0.1 (gdbench_signum:Signum)" in message
    assert "plugin other-signum 0.1 (other_signum:Signum)" in message
    path = tmp_path / "plugin.toml"
    path.write_text('task = "sigmoid_neuron"\noptimizer = "signum"\n', encoding="utf-8")
    with pytest.raises(SpecError, match="optimizer: optimizer 'signum' is claimed by plugin"):
        load_spec(path)
    assert cli.main(["list"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines()
               if line.split()[:1] == ["signum"]]
    assert "refused" in line and "gdbench-signum" in line and "other-signum" in line


def test_a_plugin_claiming_a_built_in_name_is_refused_naming_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path / "site", "adam-again", {"adam": "adam_again:Signum"}, PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ValueError, match=r"'adam' is claimed by gdbench \(built in\) and by "
                                         r"plugin adam-again 0\.1 \(adam_again:Signum\)"):
        gdbench.optimizers.get("adam")


def test_a_plugin_that_fails_to_load_names_itself(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path / "site", "broken-plugin", {"broken": "broken_plugin:Nothing"},
            "raise ImportError('a dependency is missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ValueError, match=r"plugin broken-plugin 0\.1 \(broken_plugin:Nothing\): "
                                         "loading it raised ImportError: a dependency is missing"):
        gdbench.optimizers.source("broken")
