"""A user's optimizers, as a spec's folder holds them: a Keras class and an update rule."""

import keras
from keras import ops

import gdbench.optimizers


class SignSGD(keras.optimizers.Optimizer):
    """Sign descent with a momentum of the gradients: w ← w − η sign(m)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, name="signsgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.velocities = [self.add_variable_from_reference(v, "velocity") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        velocity = self.velocities[self._get_variable_index(variable)]
        self.assign(velocity, self.momentum * velocity + (1 - self.momentum) * gradient)
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * ops.sign(velocity))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


def momentum_rule(param, grad, slots, *, step, learning_rate, momentum):
    """gdbench's momentum, written again: v ← γ v + η g ; w ← w − v."""
    (velocity,) = slots
    velocity = momentum * velocity + learning_rate * grad
    return param - velocity, (velocity,)


HeavyBall = gdbench.optimizers.rule_optimizer(momentum_rule, slots=("v",), name="HeavyBall",
                                              learning_rate=0.01, momentum=0.9)
