"""Tasks an installed distribution brings through the ``gdbench.tasks`` entry points.

A throwaway distribution on ``sys.path`` stands for ``pip install`` (no network).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_dists import install

import gdbench.tasks
from gdbench import cli
from gdbench.study import SpecError, load_spec

PLUGIN_MODULE = '''
import gdbench.tasks


def bowl(params, *, depth=1.0):
    """A round bowl: depth · (x² + y²)."""
    return depth * (params[..., 0] ** 2 + params[..., 1] ** 2)


Bowl = gdbench.tasks.toy_task(bowl, start=(1.0, -1.0), epochs=30)
'''


def add(site: Path, distribution: str, entries: dict[str, str]) -> None:
    install(site, distribution, entries, PLUGIN_MODULE, group=gdbench.tasks.ENTRY_POINT_GROUP)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    add(folder, "gdbench-bowl", {"bowl": "gdbench_bowl:Bowl"})
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_an_installed_task_plugin_is_found_by_name_and_used_by_a_spec(
        site: Path, tmp_path: Path) -> None:
    found = gdbench.tasks.source("bowl")
    assert found.origin == "plugin gdbench-bowl 0.1 (gdbench_bowl:Bowl)" and not found.built_in
    assert gdbench.tasks.plugin_names() == ["bowl"] and "bowl" in gdbench.tasks.plugins()
    path = tmp_path / "plugin.toml"
    path.write_text('task = {name = "bowl", depth = 2.0}\noptimizer = "gd"\n', encoding="utf-8")
    spec = load_spec(path)
    assert spec.task.name == "bowl" and spec.task.options["depth"] == 2.0 and spec.population
    assert spec.task.build().options["depth"] == 2.0


def test_gdbench_list_lists_the_task_plugin_with_its_options(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("Plugin tasks (entry points 'gdbench.tasks'):"):].splitlines()
    assert section[1].split() == ["bowl", "gdbench-bowl", "0.1", "(gdbench_bowl:Bowl)"]
    assert section[2].split() == ["toy", "epochs=30", "batch_size=full", "objective=loss;",
                                  "options:", "seed,", "start,", "depth"]


def test_a_task_name_a_plugin_and_gdbench_claim_is_refused_naming_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    add(tmp_path / "site", "saddle-again", {"saddle": "saddle_again:Bowl"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ValueError, match=r"task 'saddle' is claimed by gdbench \(built in\) and "
                                         r"by plugin saddle-again 0\.1 \(saddle_again:Bowl\)"):
        gdbench.tasks.get("saddle")
    path = tmp_path / "plugin.toml"
    path.write_text('task = "saddle"\noptimizer = "gd"\n', encoding="utf-8")
    with pytest.raises(SpecError, match="task: task 'saddle' is claimed by gdbench"):
        load_spec(path)
    assert cli.main(["list"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines()
               if line.split()[:1] == ["saddle"] and "refused" in line]
    assert "saddle-again" in line and "gdbench (built in)" in line
