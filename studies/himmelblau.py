"""Himmelblau's function: a task of the user's, as a loss of (x, y).

f(x, y) = (x² + y − 11)² + (x + y² − 7)², four minima of height 0: (3, 2),
(−2.805118, 3.131312), (−3.779310, −3.283186), (3.584428, −1.848127), a local maximum
near (−0.27, −0.92). From the start (0, 0) the paths pick a basin.

Written with operations that broadcast over leading axes (params[..., 0]), so that the
population engine evaluates many trials in one call. `studies/byo_himmelblau.toml`
studies it.

Source: Himmelblau, "Applied Nonlinear Programming", McGraw-Hill (1972).
"""

import gdbench.tasks


def himmelblau(params, *, a=11.0, b=7.0):
    """Himmelblau's function f(x, y) = (x² + y − a)² + (x + y² − b)² (a = 11, b = 7)."""
    x, y = params[..., 0], params[..., 1]
    return (x * x + y - a) ** 2 + (x + y * y - b) ** 2


Himmelblau = gdbench.tasks.toy_task(himmelblau, start=(0.0, 0.0),
                                    bounds=((-5.0, 5.0), (-5.0, 5.0)), epochs=100)
