"""Every ``>>>`` example in gdbench's docstrings, the README and docs/ runs and prints what it shows.

The modules are found by walking the package, and the pages by listing
``docs/*.md``, so a new example is run as soon as it is written. Each module's
examples, and each page's ``pycon`` blocks, run in a fresh temporary folder:
some write files (``sqlite:///mlflow.db``, ``runs/``).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import gdbench

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
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


def _pycon_examples(page: Path) -> doctest.DocTest:
    """Every ``pycon`` block of a Markdown page, as one doctest."""
    blocks = re.findall(r"^```pycon\n(.*?)^```", page.read_text(encoding="utf-8"),
                        flags=re.MULTILINE | re.DOTALL)
    name = str(page.relative_to(ROOT))
    return doctest.DocTestParser().get_doctest("\n".join(blocks), {}, name, str(page), 0)


def _run_page(page: Path) -> None:
    test = _pycon_examples(page)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, \
        f"{results.failed} of {results.attempted} examples of {test.name} failed"


#: The docs pages with a ``pycon`` block.
DOC_PAGES = sorted(page.name for page in DOCS.glob("*.md")
                   if "```pycon" in page.read_text(encoding="utf-8"))


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
    assert len(_pycon_examples(README).examples) >= 10
    _run_page(README)


def test_docs_examples_are_found() -> None:
    assert "optimizers.md" in DOC_PAGES
    assert len(_pycon_examples(DOCS / "optimizers.md").examples) >= 6


@pytest.mark.parametrize("page", DOC_PAGES)
def test_docs_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    test = _pycon_examples(DOCS / page)
    assert test.examples, f"docs/{page} has a pycon block but no example"
    _run_page(DOCS / page)


def test_optimizers_page_tables_every_registered_keras_name() -> None:
    import keras

    import gdbench.optimizers
    import gdbench.schedules

    rows = re.findall(r"^\| `(\w+)` \| `(gdbench>\w+)` \| (?:`(\w+)` \| `(gdbench>\w+)`)?",
                      (DOCS / "optimizers.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    optimizers = {name: registered for name, registered, *_ in rows}
    schedules = {name: registered for *_, name, registered in rows if name}
    for table, registry in ((optimizers, gdbench.optimizers.REGISTRY),
                            (schedules, gdbench.schedules.REGISTRY)):
        assert table == {name: keras.saving.get_registered_name(cls)
                         for name, cls in registry.items()}


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_pages_link_to_files_that_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    missing = [target for target in targets
               if "://" not in target and not target.startswith("#")
               and not (page.parent / target.split("#")[0]).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"
