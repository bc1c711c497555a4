"""Render the README's figure: optimizers on the sigmoid neuron's error surface.

Every optimizer starts from the lectures' (w, b) = (−2, −2) and runs full-batch
for a few hundred epochs, with a learning rate that brings it into the
minimum's valley; the paths are drawn on the contours and on the 3-D surface.

    python scripts/readme_figures.py            # writes docs/images/sigmoid_trajectories.png
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from PIL import Image  # noqa: E402

import gdbench.optimizers  # noqa: E402
import gdbench.tasks  # noqa: E402
from gdbench import plots  # noqa: E402

#: optimizer → keywords. Each η is large enough to reach the valley within
#: the epochs drawn and small enough not to fly off the surface.
OPTIMIZERS: dict[str, dict[str, float]] = {
    "gd": {"learning_rate": 1.0},
    "momentum": {"learning_rate": 0.5, "momentum": 0.9},
    "nesterov": {"learning_rate": 0.5, "momentum": 0.9},
    "adagrad": {"learning_rate": 0.5},
    "rmsprop": {"learning_rate": 0.05},
    "adam": {"learning_rate": 0.1},
}

#: (w, b) window drawn: the start, the plateau it sits on and the valley.
WINDOW = ((-3.0, 5.0), (-6.0, 2.0))

#: The README's budget for one image.
MAX_BYTES = 300_000
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "docs" / "images" / "sigmoid_trajectories.png"
)


def label(name: str, keywords: dict[str, float]) -> str:
    """``"adam (η=0.1)"``: the optimizer and its learning rate."""
    return f"{name} (η={keywords['learning_rate']:g})"


def render(output: Path, epochs: int) -> Path:
    """Train every optimizer of :data:`OPTIMIZERS` and draw their paths to ``output``.

    Args:
        output: the PNG to write.
        epochs: full-batch epochs (one step each) per optimizer.
    """
    trajectories = {}
    task = gdbench.tasks.get("sigmoid_neuron")
    for name, keywords in OPTIMIZERS.items():
        keras.backend.clear_session()
        result = task.fit(gdbench.optimizers.get(name, **keywords), epochs=epochs)
        trajectories[label(name, keywords)] = result.trajectory
    path = plots.plot_trajectories(
        task, trajectories, output, kind="both", bounds=WINDOW,
        title=f"Sigmoid neuron, X = (0.5, 2.5), Y = (0.2, 0.9): {epochs} full-batch steps "
              "from (w, b) = (−2, −2)",
    )
    shrink_to_palette(path)
    return path


def shrink_to_palette(path: Path) -> None:
    """Re-encode the PNG with a 256-colour palette when it is over :data:`MAX_BYTES`."""
    if path.stat().st_size <= MAX_BYTES:
        return
    with Image.open(path) as image:
        quantized = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    quantized.save(buffer, format="PNG", optimize=True)
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="PNG to write")
    parser.add_argument("--epochs", type=int, default=300, help="full-batch epochs per optimizer")
    arguments = parser.parse_args()
    path = render(arguments.output, arguments.epochs)
    print(f"{path} ({path.stat().st_size / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
