"""Every ``>>>`` example in gdbench's docstrings and in the README runs and prints what it shows.

The modules are found by walking the package, so a new example is run as
soon as it is written. Each module's examples, and the README's, run in a
fresh temporary folder: some write files (``sqlite:///mlflow.db``, ``runs/``).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import gdbench

README = Path(__file__).resolve().parents[1] / "README.md"
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    names = ["gdbench"] + [info.name for info in
                           pkgutil.walk_packages(gdbench.__path__, prefix="gdbench.")]
    found = []
    for name in names:
        path = Path(importlib.util.find_spec(name).origin)
        # Read before importing: only modules whose source has an example are imported.
        if ">>>" in path.read_text(encoding="utf-8"):
            found.append(name)
    return found


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert {"gdbench.optimizers", "gdbench.schedules", "gdbench.study"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    assert tests, f"{name} has '>>>' in its source but no docstring example"
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples of {name} failed"


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"^```pycon\n(.*?)^```", README.read_text(encoding="utf-8"),
                        flags=re.MULTILINE | re.DOTALL)
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "README.md", str(README), 0)
    assert len(test.examples) >= 10
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} README examples failed"


def test_readme_tables_every_registered_keras_name() -> None:
    import keras

    import gdbench.optimizers
    import gdbench.schedules

    rows = re.findall(r"^\| `(\w+)` \| `(gdbench>\w+)` \| (?:`(\w+)` \| `(gdbench>\w+)`)?",
                      README.read_text(encoding="utf-8"), flags=re.MULTILINE)
    optimizers = {name: registered for name, registered, *_ in rows}
    schedules = {name: registered for *_, name, registered in rows if name}
    for table, registry in ((optimizers, gdbench.optimizers.REGISTRY),
                            (schedules, gdbench.schedules.REGISTRY)):
        assert table == {name: keras.saving.get_registered_name(cls)
                         for name, cls in registry.items()}
