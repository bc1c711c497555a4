"""The defaults the documentation states are the code's: docs/spec.md's table of keys and the
spec module's docstring table, each default read from the text and compared with what
reading a spec that leaves the key out gives."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gdbench.study import load_spec
from gdbench.study.defaults import OPTUNA_FILE
from gdbench.study.plan.reader import STUDY_KEYS
from gdbench.study.spec import model
from gdbench.study.spec.model import ConfirmSpec, StudySpec

ROOT = Path(__file__).resolve().parents[1]
SPEC_DOC = ROOT / "docs" / "spec.md"

#: A spec of each kind whose other keys are left out: (task, sampler or None).
TOY = 'task = "sigmoid_neuron"\noptimizer = "gd"\n'
IMAGE = 'task = "digits_mlp"\noptimizer = "gd"\n'


def default_cells(text: str) -> dict[str, str]:
    """key → the default column of a Markdown table of spec keys (``| `key` | meaning | default |``)."""
    cells = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*`(\w+)`\s*\|.*\|\s*(.*?)\s*\|\s*$", line)
        if match:
            cells[match.group(1)] = match.group(2)
    return cells


def read(tmp_path: Path, text: str, name: str = "defaults") -> StudySpec:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return load_spec(path)


def leading_word(cell: str) -> str:
    """The first word of a cell, without Markdown code marks: ``"`tpe` (with …)"`` → ``tpe``."""
    return re.match(r"[`\"]*([\w:/.]*)", cell).group(1)


#: key → a check of a cell's stated default against a toy spec that leaves the key out.
CHECKS: dict[str, Callable[[str, StudySpec], None]] = {
    "name": lambda cell, spec: (
        "stem" in cell and spec.name == "defaults") or pytest.fail(f"name: {cell}"),
    "trials": lambda cell, spec: int(leading_word(cell)) == spec.trials or pytest.fail(cell),
    "sampler": lambda cell, spec: leading_word(cell) == spec.sampler.name or pytest.fail(cell),
    "pruner": lambda cell, spec: leading_word(cell) == spec.pruner.name or pytest.fail(cell),
    "seed": lambda cell, spec: int(leading_word(cell)) == spec.seed or pytest.fail(cell),
    "balance": lambda cell, spec: (leading_word(cell) == "true") == spec.balance
    or pytest.fail(cell),
    "population": lambda cell, spec: cell.startswith("true") and spec.population
    or pytest.fail(cell),
    "confirm": lambda cell, spec: cell.startswith("none") and spec.confirm is None
    or pytest.fail(cell),
    "compare": lambda cell, spec: cell.startswith("none") and spec.compare is None
    or pytest.fail(cell),
    "storage": lambda cell, spec: (spec.storage is None and OPTUNA_FILE in cell)
    or pytest.fail(cell),
    "tracking": lambda cell, spec: (spec.tracking.mlflow and spec.tracking.tensorboard
                                    and ("on" in cell)) or pytest.fail(cell),
    "description": lambda cell, spec: (cell.strip("`") == '""' and spec.description == "")
    or pytest.fail(cell),
}


@pytest.fixture(scope="module")
def toy_spec(tmp_path_factory: pytest.TempPathFactory) -> StudySpec:
    return read(tmp_path_factory.mktemp("toy"), TOY)


@pytest.mark.parametrize("source", ["docs/spec.md", "gdbench/study/spec/model.py"])
@pytest.mark.parametrize("key", sorted(CHECKS))
def test_a_stated_default_is_the_one_a_spec_gets(source: str, key: str,
                                                 toy_spec: StudySpec) -> None:
    cells = default_cells((ROOT / source).read_text(encoding="utf-8"))
    assert key in cells, f"{source} states no default for {key}"
    CHECKS[key](cells[key], toy_spec)


@pytest.mark.parametrize("source", ["docs/spec.md", "gdbench/study/spec/model.py"])
def test_every_spec_key_has_its_stated_default(source: str) -> None:
    documented = set(default_cells((ROOT / source).read_text(encoding="utf-8")))
    assert set(STUDY_KEYS) <= documented


def test_confirm_seeds_default_as_stated() -> None:
    cell = default_cells(SPEC_DOC.read_text(encoding="utf-8"))["confirm"]
    stated = re.search(r"`seeds` defaults to (\d+)", cell)
    assert stated and int(stated.group(1)) == ConfirmSpec.seeds


def test_trials_per_batch_as_docs_spec_states(tmp_path: Path) -> None:
    cell = default_cells(SPEC_DOC.read_text(encoding="utf-8"))["trials_per_batch"]
    stated = re.match(r"(\d+) for a toy task under `random` or `grid`.*; (\d+) otherwise", cell)
    assert stated, cell
    fast, other = int(stated.group(1)), int(stated.group(2))
    for sampler in ("random", "grid"):
        extra = "\n[search]\nlearning_rate = {choices = [0.1, 1.0]}\n" if sampler == "grid" else ""
        spec = read(tmp_path, TOY + f'sampler = "{sampler}"\n' + extra, sampler)
        assert spec.trials_per_batch == fast, sampler
    for name, text in (("tpe", TOY), ("tpe_named", TOY + 'sampler = "tpe"\n'),
                       ("image", IMAGE), ("image_random", IMAGE + 'sampler = "random"\n')):
        assert read(tmp_path, text, name).trials_per_batch == other, name


def test_trials_per_batch_as_the_spec_module_states() -> None:
    """The module docstring's paragraph on ``trials_per_batch`` says the table's numbers."""
    text = model.__doc__
    fast = re.search(r"\(``random``, ``grid``\) trains (\d+) trials a batch", text)
    other = re.search(r"and an image task train (\d+)", text)
    assert fast and other
    assert int(fast.group(1)) == model.default_trials_per_batch(True, "random")
    assert int(other.group(1)) == model.default_trials_per_batch(True, "tpe")
    assert int(other.group(1)) == model.default_trials_per_batch(False, "random")
