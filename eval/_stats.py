"""Bootstrap confidence intervals and paired significance tests over per-user metric values."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["BootstrapCI", "PairedTest", "bootstrap_ci", "paired_test"]

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class BootstrapCI:
    """Mean of per-user values with a percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Model A minus model B on the same users.

    Attributes:
        mean_diff: Mean of per-user differences A - B.
        low, high: Percentile bootstrap interval of the mean difference.
        p_bootstrap: Two-sided paired bootstrap p-value (differences re-centred to mean 0 under H0).
        p_wilcoxon: Two-sided Wilcoxon signed-rank p-value (zero differences dropped); 1.0 if all are 0.
        p_ttest: Two-sided paired t-test p-value; 1.0 if the differences have no variance.
        n: Number of users.
    """

    mean_diff: float
    low: float
    high: float
    p_bootstrap: float
    p_wilcoxon: float
    p_ttest: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def _resample_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    means = np.empty(n_resamples)
    # Chunks bound memory at ~200 resamples x n users.
    for start in range(0, n_resamples, 200):
        stop = min(start + 200, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means


def bootstrap_ci(
    values: np.ndarray | list[float],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap CI of the mean, resampling users with replacement.

    Args:
        values: One value per user.
        n_resamples: Bootstrap resamples.
        confidence: Interval mass, e.g. 0.95.
        seed: Seed; the same seed and data give the same interval.
    """
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return BootstrapCI(math.nan, math.nan, math.nan, 0)
    means = _resample_means(v, n_resamples, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return BootstrapCI(float(v.mean()), float(low), float(high), len(v))


def paired_test(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> PairedTest:
    """Compare two models' per-user values on the same users.

    Args:
        a: Model A, one value per user.
        b: Model B, same users in the same order.
        n_resamples: Bootstrap resamples.
        confidence: Interval mass for the difference.
        seed: Seed of the bootstrap.

    Raises:
        ValueError: If the arrays differ in length.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired arrays differ in shape: {x.shape} vs {y.shape}")
    d = x - y
    n = len(d)
    if n == 0:
        return PairedTest(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = _resample_means(d, n_resamples, rng)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    observed = abs(d.mean())
    null = np.abs(means - d.mean())  # the bootstrap distribution shifted to mean 0
    p_boot = float((1 + np.sum(null >= observed - 1e-15)) / (n_resamples + 1))
    if not np.any(d != 0):
        p_wil, p_t = 1.0, 1.0
    else:
        with warnings.catch_warnings():
            # Small-sample / tie notices from scipy are expected here, not errors.
            warnings.simplefilter("ignore")
            p_wil = float(stats.wilcoxon(d).pvalue)
            p_t = float(stats.ttest_rel(x, y).pvalue) if np.std(d) > 0 else 0.0
    return PairedTest(float(d.mean()), float(low), float(high), p_boot, p_wil, p_t, n)
