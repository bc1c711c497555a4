"""How the study layer writes numbers and tables as text (the terminal, ``protocol.md``, ``best_of_each.md``):
one cell format and one table layout for the leaderboard, the budgets and the
confirmation.

    >>> print("\\n".join(text_table([["rank", "value"], ["1", cell(0.0123456)], ["2", cell(None)]])))
    rank  value
    ----  -------
    1     0.01235
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gdbench.plots import value_text

__all__ = ["cell", "markdown_table", "text_table"]


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, nothing for ``None`` or NaN (the figures'
    legends print numbers alike: :func:`gdbench.plots.value_text`)."""
    return value_text(value)


def text_table(table: Sequence[Sequence[str]]) -> list[str]:
    """The lines of ``table`` (its first row the header) in aligned columns, a rule under
    the header."""
    widths = [max(len(line[index]) for line in table) for index in range(len(table[0]))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def markdown_table(table: Sequence[Sequence[str]]) -> list[str]:
    """The lines of ``table`` (its first row the header) as a Markdown table."""
    rows = [[text.replace("|", "\\|") for text in line] for line in table]
    lines = ["| " + " | ".join(line) + " |" for line in rows]
    lines.insert(1, "|" + "|".join("---" for _ in rows[0]) + "|")
    return lines
