"""Nesterov accelerated gradient (NAG)."""

from __future__ import annotations

from typing import Any

import keras

from gdbench import _validate
from gdbench.optimizers._base import RuleOptimizer


def nesterov_update(
    param: Any, grad: Any, slots: tuple[Any], *, step: Any, learning_rate: Any, momentum: Any
) -> tuple[Any, tuple[Any]]:
    """One NAG step on the look-ahead point: v ← γ v + g ; x ← x − η (γ v + g). ``slots`` are (v,)."""
    del step
    (velocity,) = slots
    velocity = momentum * velocity + grad
    return param - learning_rate * (momentum * velocity + grad), (velocity,)


def nesterov_iterate(param: Any, slots: tuple[Any], *, learning_rate: Any, momentum: Any) -> Any:
    """The lectures' iterate behind the look-ahead point ``param`` after a step: w = x + γ η v.

    ``learning_rate`` is the η of the step just taken, ``slots`` the (v,) it left.
    """
    (velocity,) = slots
    return param + momentum * learning_rate * velocity


@keras.saving.register_keras_serializable(package="gdbench")
class Nesterov(RuleOptimizer):
    """Nesterov accelerated gradient, held at the look-ahead point.

    The lectures' NAG (``do_nag_gradient_descent``) keeps the iterate w and
    the history u, and takes the gradient at the look-ahead point w − γ u:

        u_t = γ u_{t−1} + η ∇L(w_{t−1} − γ u_{t−1})
        w_t = w_{t−1} − u_t

    A Keras optimizer only sees the gradient where its variable stands, so
    the variable here holds the look-ahead point x_t = w_t − γ u_t, and the
    velocity v_t = u_t / η (Sutskever et al.'s change of variable):

        v_t = γ v_{t−1} + g_t ,  g_t = ∇L(x_{t−1})
        x_t = x_{t−1} − η (γ v_t + g_t)

    The variable is therefore not the lectures' iterate: for a constant η,
    w_t = x_t + γ η v_t (:func:`nesterov_iterate`), and x_0 = w_0 since v
    starts at zero. Both sequences converge to the same point, but the
    paths and the losses along them differ (by up to 0.5 in the parameters
    of the lectures' sigmoid neuron at η = 1, γ = 0.9). gdbench's toy tasks
    (``Task.fit``, the population engine, their pictures and studies) report
    w_t, so their NAG is the lectures'; a Keras model trained with this
    class ends at the look-ahead point, as with Keras's and PyTorch's NAG.
    Under a schedule the reported point is x_t + γ η_t v_t with η_t the rate
    of step t, which equals x_{t−1} − η_t g_t: the look-ahead point moved by
    one plain gradient step.

    | symbol | keyword         | default |
    |--------|-----------------|---------|
    | η      | `learning_rate` | 0.01    |
    | γ      | `momentum`      | 0.9     |

    Variant: η lives outside the velocity (as PyTorch's
    `SGD(nesterov=True)` with no dampening). `keras.optimizers.SGD(momentum=γ,
    nesterov=True)` keeps η inside (m ← γ m − η g ; w ← w + γ m − η g): the
    two agree for a constant η (m = −η v) and differ under a schedule, where
    this variant rescales the whole buffer by the current η.

    References:
        Nesterov, "A method for solving the convex programming problem with
        convergence rate O(1/k²)", Soviet Mathematics Doklady, 1983.
        Sutskever, Martens, Dahl and Hinton, "On the importance of
        initialization and momentum in deep learning", ICML 2013.

    Args:
        learning_rate: η, a float > 0 or a `LearningRateSchedule`.
        momentum: γ, decay of the velocity, 0 ≤ γ < 1.
        name: the optimizer's name.
        **kwargs: the Keras base keywords (`clipnorm`, `clipvalue`, ...).
    """

    rule = staticmethod(nesterov_update)
    #: The point toy tasks report instead of the variable: the lectures' w.
    iterate = staticmethod(nesterov_iterate)
    slot_names = ("v",)
    hyperparameter_names = ("momentum",)

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.9,
        name: str = "nesterov",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = _validate.decay_rate("momentum", momentum)

    def iterate_of(self, variable: Any, learning_rate: Any) -> Any:
        """The lectures' iterate w behind ``variable`` after the last step.

        Args:
            variable: a variable this optimizer was built for.
            learning_rate: η of the last step (a schedule evaluated at its step).
        """
        slots = self._slots[self._get_variable_index(variable)]
        return nesterov_iterate(
            variable.value, tuple(slot.value for slot in slots),
            learning_rate=keras.ops.cast(learning_rate, variable.dtype), momentum=self.momentum,
        )
