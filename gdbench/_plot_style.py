"""The style every gdbench figure shares: its colours, its fonts, how it is saved.

One optimizer keeps one colour in every figure (:func:`color_for`, several
runs of it :func:`shades_for`), and every one of those colours stands out on
an error surface's colour map (:data:`SURFACE_CMAP`, shades of grey). Numbers
print as the leaderboard prints them (:func:`value_text`); a value axis goes
logarithmic where its values span decades (:func:`spans_decades`). Every figure
is drawn under :data:`STYLE` and written as a PNG at :data:`DPI` by :func:`save_figure`.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from gdbench._figure_pool import save

__all__ = [
    "DPI",
    "LOG_DECADES",
    "STYLE",
    "SURFACE_CMAP",
    "color_for",
    "label_colors",
    "legend_columns",
    "png_path",
    "save_figure",
    "shades_for",
    "spans_decades",
    "title_place",
    "value_text",
]

DPI = 120

STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": False,
}

#: A fixed colour per registered optimizer, in the lectures' order.
_OPTIMIZER_COLORS = {
    "gd": "#1f77b4",
    "momentum": "#ff7f0e",
    "nesterov": "#2ca02c",
    "adagrad": "#d62728",
    "rmsprop": "#9467bd",
    "adadelta": "#8c564b",
    "adam": "#e377c2",
    "adamax": "#17becf",
    "nadam": "#bcbd22",
    "amsgrad": "#393b79",
    "adamw": "#e7969c",
    "maxprop": "#637939",
    "rprop": "#000000",
}

# Colours for labels that name no registered optimizer: distinct from the
# fixed ones and from each other.
_EXTRA_COLORS = (
    "#843c39", "#3182bd", "#31a354", "#756bb1", "#e6550d",
    "#17a589", "#a55194", "#8ca252", "#bd9e39", "#6baed6",
)


#: An error surface's colour map: white (low) to mid grey (high). Grey, so that no
#: optimizer's colour (all of them hued) melts into it; light, so that each shows.
SURFACE_CMAP = mcolors.LinearSegmentedColormap.from_list(
    "gdbench_surface", ["#ffffff", "#a0a0a0"])

#: A value axis is logarithmic where its positive values span this many decades.
LOG_DECADES = 2.0


def value_text(value: Any) -> str:
    """A number as the leaderboard prints it: floats to 4 significant digits, nothing for
    ``None`` or NaN, anything else as ``str`` gives it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def spans_decades(values: Any, decades: float = LOG_DECADES) -> bool:
    """Whether ``values``' finite ones are all > 0 and span ``decades`` decades or more."""
    array = np.asarray(values, dtype=float).ravel()
    finite = array[np.isfinite(array)]
    return bool(finite.size and np.all(finite > 0)
                and finite.max() >= finite.min() * 10.0 ** decades)


def color_for(label: str) -> str:
    """The colour of ``label`` in every gdbench figure.

    A label whose first word is a registered optimizer name (``"adam"``,
    ``"Adam (η=0.01)"``) gets that optimizer's fixed colour; any other label a
    colour chosen from its text, the same in every run.

    Args:
        label: an optimizer name or a run's label.
    """
    if not isinstance(label, str):
        raise TypeError(f"label: expected a string, got {label!r}")
    first_word = re.split(r"[^0-9a-z_]+", label.strip().lower(), maxsplit=1)[0]
    if first_word in _OPTIMIZER_COLORS:
        return _OPTIMIZER_COLORS[first_word]
    return _EXTRA_COLORS[zlib.crc32(label.encode("utf-8")) % len(_EXTRA_COLORS)]


def shades_for(label: str, count: int) -> list[str]:
    """``count`` shades of ``label``'s colour, from its own to paler and darker ones.

    For several runs of one optimizer in one figure (its best trials, best
    first): they keep the optimizer's hue and stay told apart.

    Args:
        label: an optimizer name or a run's label (:func:`color_for`).
        count: the shades wanted, ≥ 1.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: expected an integer ≥ 1, got {count!r}")
    base = np.array(mcolors.to_rgb(color_for(label)))
    shades = [base]
    for index in range(1, count):
        # Alternately paler and darker, each step further from the base colour.
        amount = 0.55 * math.ceil(index / 2) / math.ceil((count - 1) / 2)
        toward = np.ones(3) if index % 2 else np.zeros(3)
        shades.append(base + (toward - base) * amount)
    return [mcolors.to_hex(shade) for shade in shades]


def label_colors(labels: Mapping[str, Any], colors: Mapping[str, str] | None) -> dict[str, str]:
    """Each label's colour: ``colors``' where it has one, else :func:`color_for`'s."""
    chosen = dict(colors or {})
    for label, color in chosen.items():
        if not mcolors.is_color_like(color):
            raise ValueError(f"colors[{label!r}]: expected a matplotlib colour, got {color!r}")
    return {label: chosen.get(label) or color_for(label) for label in labels}


def legend_columns(labels: Sequence[str], width: float) -> int:
    """Columns of a legend below a figure ``width`` inches wide: as many as its labels fit."""
    # About 13 characters an inch at the legend's 9 points, plus the line sample.
    longest = max((len(label) for label in labels), default=1) + 6
    return max(1, min(len(labels), int(width * 13 // longest)))


def title_place(logarithmic: bool) -> dict[str, float]:
    """``set_title``'s placement for an axes whose y axis is ``logarithmic``: there, at the
    top of the axes, not searched for at each draw.

    Matplotlib moves a title up past what sits above the axes: x tick labels at the top
    (none in gdbench's figures) and the y axis' offset text (``1e-5``), which a log axis
    never has. Looking costs the y axis' ticks laid out once more at each draw.
    """
    return {"y": 1.0} if logarithmic else {}


def png_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a PNG file's path (its suffix checked), for a figure to be written there."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path: expected a .png file, got {str(path)!r}")
    return target


def save_figure(figure: Figure, target: Path) -> Path:
    """Write ``figure`` as a PNG at ``target`` (its folders created) and return the path;
    inside :meth:`gdbench._figure_pool.FigurePool.write`, a worker writes it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    save(figure, target, format="png", dpi=DPI)
    return target
