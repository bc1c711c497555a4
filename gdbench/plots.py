"""The lectures' pictures: error surfaces with optimizer paths, loss curves and
effective learning rates.

Every function draws one figure on its own :class:`matplotlib.figure.Figure`
(the Agg canvas; pyplot's global state is never touched, so plots can be drawn
from worker threads), writes it as a PNG and returns the file's path, ready to
be logged as an artifact by a tracker.

One optimizer keeps one colour in every figure: :func:`color_for` maps a
registered optimizer name (or a label that starts with one, ``"adam η=0.1"``)
to a fixed colour, and any other label to a colour derived from its text.

    >>> import gdbench.optimizers
    >>> from gdbench import plots, tasks
    >>> task = tasks.get("sigmoid_neuron")
    >>> result = task.fit(gdbench.optimizers.get("gd", learning_rate=1.0), epochs=300)
    >>> plots.plot_trajectories(task, {"gd": result.trajectory}, "gd.png", kind="both")
    PosixPath('gd.png')
"""

from __future__ import annotations

from gdbench._curve_plots import plot_effective_learning_rates, plot_loss_curves, plot_per_step
from gdbench._plot_style import (
    DPI,
    STYLE,
    SURFACE_CMAP,
    color_for,
    png_path,
    save_figure,
    shades_for,
    spans_decades,
    value_text,
)
from gdbench._surface_plots import (
    TRAJECTORY_KINDS,
    SurfaceTask,
    plot_trajectories,
    plot_trajectory_pair,
    surface_window,
)

# The shared style, the surfaces with their paths and the curves live in modules
# of their own; every name stays importable from here.
__all__ = [
    "DPI",
    "STYLE",
    "SURFACE_CMAP",
    "TRAJECTORY_KINDS",
    "SurfaceTask",
    "color_for",
    "plot_effective_learning_rates",
    "plot_loss_curves",
    "plot_per_step",
    "plot_trajectories",
    "plot_trajectory_pair",
    "png_path",
    "save_figure",
    "shades_for",
    "spans_decades",
    "surface_window",
    "value_text",
]
