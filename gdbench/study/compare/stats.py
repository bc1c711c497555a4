"""Statistics of a configuration rerun over seeds: mean, spread and a bootstrap interval.

A confirmation (:mod:`gdbench.study.compare.confirm`) reruns each optimizer's best
configuration over N seeds; every quantity it reports (the objective, each
metric's final value, each metric's best epoch value) is summarized by
:func:`summarize`:

- the mean of the N values;
- their standard deviation with ``ddof=1`` (the sample's, N − 1 in the
  denominator; NaN for a single value);
- a 95 % percentile bootstrap interval of the mean: :data:`BOOTSTRAP_RESAMPLES`
  resamples of N values drawn with replacement, by
  ``numpy.random.default_rng(BOOTSTRAP_SEED).integers(0, N, (BOOTSTRAP_RESAMPLES, N))``,
  and the 2.5th and 97.5th percentiles (``numpy.percentile``, linear
  interpolation) of their means. The seed is fixed, so a report drawn twice
  from the same values gives the same interval.

Non-finite values (a rerun that diverged) are left out; ``n`` says how many remain.

    >>> summarize([1.0, 2.0, 3.0]).mean, summarize([1.0, 2.0, 3.0]).std
    (2.0, 1.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["BOOTSTRAP_LEVEL", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "Summary", "best_value",
           "summarize"]

#: Resamples of the bootstrap interval.
BOOTSTRAP_RESAMPLES = 10_000

#: The seed of the bootstrap's resampling.
BOOTSTRAP_SEED = 0

#: The bootstrap interval's coverage.
BOOTSTRAP_LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Summary:
    """The finite values of one quantity over seeds, summarized.

    Attributes:
        n: how many finite values.
        mean: their mean (NaN when none).
        std: their standard deviation, ``ddof=1`` (NaN below two values).
        low: the bootstrap interval's lower end (NaN when none).
        high: its upper end.
    """

    n: int
    mean: float
    std: float
    low: float
    high: float


def summarize(values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED, level: float = BOOTSTRAP_LEVEL) -> Summary:
    """Mean, standard deviation (``ddof=1``) and percentile bootstrap interval of ``values``.

    Args:
        values: one value per seed; non-finite ones are left out.
        resamples: bootstrap resamples.
        seed: the resampling's seed.
        level: the interval's coverage, 0 < level < 1.

    Raises:
        ValueError: ``resamples`` < 1 or ``level`` outside (0, 1).
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples: expected an integer >= 1, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    n = int(array.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    std = float(np.std(array, ddof=1)) if n > 1 else math.nan
    indices = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means = array[indices].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Summary(n, float(array.mean()), std, float(low), float(high))


def best_value(curve: Sequence[float], maximize: bool) -> float:
    """A curve's best epoch value: its largest when ``maximize``, else its smallest (NaN
    when no epoch is finite)."""
    array = np.asarray(curve, dtype=np.float64)
    array = array[np.isfinite(array)]
    if not array.size:
        return math.nan
    return float(array.max() if maximize else array.min())
