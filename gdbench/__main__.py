"""``python -m gdbench``: the same as the ``gdbench`` command."""

from __future__ import annotations

from gdbench.cli import entry

entry()
