"""Throwaway distributions standing for ``pip install`` of a plugin: a ``*.dist-info`` folder
with ``entry_points.txt``, and its module, in a folder the test puts on ``sys.path``."""

from __future__ import annotations

from pathlib import Path


def install(site: Path, distribution: str, entries: dict[str, str], module: str = "",
            group: str = "gdbench.optimizers") -> None:
    """A distribution ``distribution`` 0.1 in ``site`` whose entry points in ``group`` are
    ``entries``, with ``module`` as its module's text."""
    info = site / f"{distribution}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n",
                                   encoding="utf-8")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}", encoding="utf-8")
    if module:
        (site / f"{distribution.replace('-', '_')}.py").write_text(module, encoding="utf-8")
