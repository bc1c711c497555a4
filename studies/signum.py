"""Signum, an update rule of ten lines, made a Keras optimizer by gdbench (``byo_lion_signum.toml``).

Sign descent with momentum (Bernstein et al., "signSGD: Compressed Optimisation
for Non-Convex Problems", ICML 2018): every parameter moves by ±η, the sign of
a moving average of its gradients.

    gdbench check-optimizer studies/signum.py:Signum
"""

from keras import ops

import gdbench.optimizers


def signum(param, grad, slots, *, step, learning_rate, beta):
    """m ← β m + (1 − β) g ; w ← w − η sign(m)."""
    del step
    (m,) = slots
    m = beta * m + (1.0 - beta) * grad
    return param - learning_rate * ops.sign(m), (m,)


Signum = gdbench.optimizers.rule_optimizer(signum, slots=("m",), learning_rate=1e-3, beta=0.9)
