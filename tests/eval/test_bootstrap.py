from __future__ import annotations

import numpy as np
import pytest

from eval import bootstrap_ci, interest_prf, paired_test


def test_bootstrap_is_deterministic_and_brackets_the_mean() -> None:
    values = np.random.default_rng(0).random(300)
    a = bootstrap_ci(values, seed=7)
    assert a == bootstrap_ci(values, seed=7)
    assert a != bootstrap_ci(values, seed=8)
    assert a.low < a.mean < a.high
    assert a.mean == pytest.approx(values.mean())
    # Standard error of a U(0,1) mean over 300 users is ~0.0167; a 95% CI spans ~4 of them.
    assert 0.04 < a.high - a.low < 0.09


def test_paired_test_detects_a_real_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(400)
    better = base + 0.05 + rng.normal(0, 0.05, 400)
    strong = paired_test(better, base, seed=0)
    assert strong.mean_diff > 0 and strong.low > 0
    assert strong.p_bootstrap < 0.01 and strong.p_wilcoxon < 0.01 and strong.p_ttest < 0.01
    noise = paired_test(base + rng.normal(0, 0.05, 400), base, seed=0)
    assert noise.p_bootstrap > 0.01 and noise.low < 0 < noise.high
    same = paired_test(base, base)
    assert (same.mean_diff, same.p_wilcoxon, same.p_ttest) == (0.0, 1.0, 1.0)
    assert paired_test(better, base, seed=3) == paired_test(better, base, seed=3)
    with pytest.raises(ValueError):
        paired_test([1.0], [1.0, 2.0])


def test_interest_prf() -> None:
    assert interest_prf({"Comedy", "Drama"}, ("comedy", "Romance")) == pytest.approx((0.5, 0.5, 0.5))
    assert interest_prf({"Comedy"}, ("Comedy", "Drama")) == pytest.approx((1.0, 0.5, 2 / 3))
    assert interest_prf(set(), ("Comedy",)) == (0.0, 0.0, 0.0)
    assert interest_prf({"War"}, ("Comedy",)) == (0.0, 0.0, 0.0)
