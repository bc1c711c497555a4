"""Classic two-dimensional test surfaces: a point (x, y) moved downhill.

The loss is the height of the surface. With ``noise`` = σ > 0 each step's
gradient carries additive Gaussian noise, as in DeepOBS's ``two_d`` problems:
the loss of a step is f(x, y) + x ξ₁ + y ξ₂ with (ξ₁, ξ₂) ~ N(0, σ² I) drawn
from the task's seed and the epoch (one step per epoch), so every trial with
the same seed meets the same noise. DeepOBS averages over 128 draws of
σ = 1, which is σ = 1/√128 ≈ 0.088 here. The logged loss is the noise-free
height.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Sequence

import numpy as np
import tensorflow as tf

from gdbench import _validate
from gdbench.tasks._base import NOISE_STREAM
from gdbench.tasks._toy import ToyTask


class SurfaceTask(ToyTask):
    """A loss surface f(x, y) with a standard start point and plotting window.

    Subclasses set :attr:`start` and :attr:`surface_bounds` and implement
    :meth:`height`, written with TensorFlow operations that broadcast.

    Args:
        seed: seeds the gradient noise.
        start: the initial (x, y); ``None`` for the surface's standard start.
        noise: σ ≥ 0, the standard deviation of the additive gradient noise.
    """

    parameter_names = ("x", "y")
    default_epochs = 200
    start: ClassVar[tuple[float, float]]

    def __init__(self, *, seed: int = 0, start: Sequence[float] | None = None,
                 noise: float = 0.0) -> None:
        start = type(self).start if start is None else _validate.point("start", start, 2)
        noise = _validate.number("noise", noise, low=0.0)
        super().__init__(seed=seed, start=start, noise=noise)

    @abc.abstractmethod
    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """f(x, y), element-wise."""

    def initial_parameters(self) -> np.ndarray:
        return np.array(self.options["start"], dtype=np.float64)

    def loss(self, params: tf.Tensor, batch: Any = None) -> tf.Tensor:
        """f(x, y), plus x ξ₁ + y ξ₂ when ``batch`` is a noise draw (ξ₁, ξ₂)."""
        params = tf.convert_to_tensor(params, dtype=tf.float64)
        value = self.height(params[..., 0], params[..., 1])
        if batch is not None:
            value += tf.reduce_sum(params * tf.convert_to_tensor(batch, tf.float64), axis=-1)
        return value

    def batches(self, batch_size: int | None, epoch: int) -> list[Any]:
        """One step per epoch: ``[None]`` without noise, else ``[(ξ₁, ξ₂)]``."""
        super().batches(batch_size, epoch)
        if self.options["noise"] == 0.0:
            return [None]
        rng = np.random.default_rng((self.seed, NOISE_STREAM, epoch))
        return [rng.normal(0.0, self.options["noise"], size=2)]


class Saddle(SurfaceTask):
    """A saddle point: f(x, y) = x² − y².

    The origin is a saddle: flat gradient, downhill along y, uphill along x.
    Starting just off the ridge (y = 10⁻³), plain GD crawls past the saddle
    while momentum and adaptive methods escape it quickly. f is unbounded
    below, so the loss keeps falling once the point has escaped: a study that
    minimizes it rewards the run that flies off fastest (to −∞), so compare
    optimizers here by their paths, at fixed settings, not by a tuned loss.

    Source: the lectures' saddle-point illustration.
    """

    name = "saddle"
    start = (1.0, 1e-3)
    surface_bounds = ((-2.0, 2.0), (-2.0, 2.0))

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return tf.square(x) - tf.square(y)


class Ravine(SurfaceTask):
    """An elongated quadratic bowl: f(x, y) = ½ (x² + κ y²).

    The curvatures differ by the condition number κ: GD must keep η < 2/κ to
    stay stable across the ravine, and then creeps along it; momentum and
    per-parameter step sizes do better.

    Source: the lectures' ravine (ill-conditioned quadratic) example.

    Args:
        kappa: κ ≥ 1, the ratio of the two curvatures.
    """

    name = "ravine"
    start = (-4.0, 1.0)
    surface_bounds = ((-5.0, 5.0), (-2.0, 2.0))

    def __init__(self, *, seed: int = 0, start: Sequence[float] | None = None,
                 noise: float = 0.0, kappa: float = 50.0) -> None:
        kappa = _validate.number("kappa", kappa, low=1.0)
        super().__init__(seed=seed, start=start, noise=noise)
        self.options["kappa"] = kappa

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return 0.5 * (tf.square(x) + self.options["kappa"] * tf.square(y))


class Plateau(SurfaceTask):
    """A bowl surrounded by a plateau: f(x, y) = 1 − exp(−(x² + y²)).

    Far from the origin the surface is almost flat (the gradient decays like
    2r e^{−r²}), so plain GD barely moves from the start at r = 2.5; momentum
    builds speed and adaptive methods rescale the tiny gradient.

    Source: the lectures' plateau example (vanishing gradient far from the
    minimum), written as an inverted Gaussian.
    """

    name = "plateau"
    start = (2.0, 1.5)
    surface_bounds = ((-3.0, 3.0), (-3.0, 3.0))

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return 1.0 - tf.exp(-(tf.square(x) + tf.square(y)))


class Rosenbrock(SurfaceTask):
    """Rosenbrock's banana valley: f(x, y) = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1).

    Start (−0.5, 1.5) as DeepOBS's ``two_d_rosenbrock``.

    Source: Rosenbrock, "An automatic method for finding the greatest or least
    value of a function", The Computer Journal 3 (1960); DeepOBS
    (Schneider et al., ICLR 2019).
    """

    name = "rosenbrock"
    start = (-0.5, 1.5)
    surface_bounds = ((-2.0, 2.0), (-1.0, 3.0))

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return tf.square(1.0 - x) + 100.0 * tf.square(y - tf.square(x))


class Beale(SurfaceTask):
    """Beale's function, minimum 0 at (3, 0.5):

    f(x, y) = (1.5 − x + x y)² + (2.25 − x + x y²)² + (2.625 − x + x y³)².

    Start (−4.5, 4.5) as DeepOBS's ``two_d_beale``: a steep corner where the
    gradient is of order 10⁵, so plain GD needs a tiny η.

    Source: Beale, "On an iterative method for finding a local minimum of a
    function of more than one variable", Princeton (1958); DeepOBS.
    """

    name = "beale"
    start = (-4.5, 4.5)
    surface_bounds = ((-4.5, 4.5), (-4.5, 4.5))

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return (tf.square(1.5 - x + x * y) + tf.square(2.25 - x + x * tf.square(y))
                + tf.square(2.625 - x + x * y ** 3))


class Branin(SurfaceTask):
    """The Branin(-Hoo) function, three global minima of height 10/(8π) ≈ 0.398:

    f(x, y) = (y − b x² + c x − r)² + s (1 − t) cos x + s, with b = 5.1/(4π²),
    c = 5/π, r = 6, s = 10, t = 1/(8π).

    Start (2.5, 12.5) as DeepOBS's ``two_d_branin``.

    Source: Branin, "Widely convergent method for finding multiple solutions
    of simultaneous nonlinear equations", IBM J. Res. Dev. 16 (1972);
    DeepOBS; https://www.sfu.ca/~ssurjano/branin.html.
    """

    name = "branin"
    start = (2.5, 12.5)
    surface_bounds = ((-5.0, 10.0), (0.0, 15.0))

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        b, c, r, s, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
        return tf.square(y - b * tf.square(x) + c * x - r) + s * (1 - t) * tf.cos(x) + s


class Rastrigin(SurfaceTask):
    """Rastrigin's function, a grid of local minima around the global one (0 at the origin):

    f(x, y) = 20 + (x² − 10 cos 2πx) + (y² − 10 cos 2πy).

    GD settles in the nearest local minimum; the surface shows how momentum
    or a large learning rate hops between basins.

    Source: Rastrigin, "Systems of extremal control", Nauka (1974);
    https://www.sfu.ca/~ssurjano/rastr.html.
    """

    name = "rastrigin"
    start = (-3.2, 3.7)
    surface_bounds = ((-5.12, 5.12), (-5.12, 5.12))

    def height(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        two_pi = 2 * math.pi
        return (20.0 + tf.square(x) - 10.0 * tf.cos(two_pi * x)
                + tf.square(y) - 10.0 * tf.cos(two_pi * y))
