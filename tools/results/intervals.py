"""Confidence intervals for percentiles, from order statistics alone (no distribution assumed). Pure.

For n independent trials, the number B of them below the true q-quantile is Binomial(n, q), so the interval
between the l-th and u-th smallest values covers the quantile with probability P(l <= B < u). We take the
largest l and the smallest u that leave at most (1 - level) / 2 on each side. With too few trials a side has
no such order statistic: that bound is None (unbounded). A two-sided 95 % interval for p95 has an upper bound
only from 72 trials on (then it is the sample maximum); for p50, from 6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _cdf(k: int, n: int, q: float) -> float:
    """P(B <= k) for B ~ Binomial(n, q)."""
    return sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k + 1)) if k >= 0 else 0.0


def quantile_interval(values: Sequence[float], q: float, level: float = 0.95) -> tuple[float | None, float | None]:
    """The (lower, upper) bounds of a ``level`` confidence interval for the ``q``-quantile of ``values``."""
    xs = sorted(values)
    n = len(xs)
    tail = (1 - level) / 2
    lower = upper = None
    for k in range(n, 0, -1):  # the largest l with P(B <= l - 1) <= tail
        if _cdf(k - 1, n, q) <= tail:
            lower = xs[k - 1]
            break
    for k in range(1, n + 1):  # the smallest u with P(B <= u - 1) >= 1 - tail
        if _cdf(k - 1, n, q) >= 1 - tail:
            upper = xs[k - 1]
            break
    return lower, upper
