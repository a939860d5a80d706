"""scripts/effect_size.py: detectable effects, power and users needed, checked against simulated paired t-tests,
and the per-user differences read from a run's rankings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest


def test_the_formulas_agree_with_each_other_and_with_simulated_tests(script):
    from scipy import stats

    m = script("effect_size")
    assert m.detectable_effect(1.0, 100) == pytest.approx((1.959964 + 0.841621) / 10, rel=1e-5)
    assert m.detectable_effect(0.1, 400) == pytest.approx(m.detectable_effect(0.1, 100) / 2)
    eff = m.detectable_effect(0.3, 200)
    assert m.power_at(eff, 0.3, 200) == pytest.approx(0.8, abs=1e-3)
    need = m.users_needed(eff, 0.3)
    assert need in (200, 201) and m.power_at(eff, 0.3, need) >= 0.8 > m.power_at(eff, 0.3, need - 5)
    assert m.power_at(0.0, 0.3, 200) == pytest.approx(0.05)
    # the normal approximation against real paired t-tests: 2,000 simulated 100-user comparisons
    rng = np.random.default_rng(0)
    sd, n = 0.1, 100
    eff = m.detectable_effect(sd, n)
    p = stats.ttest_1samp(rng.normal(eff, sd, size=(2000, n)), 0.0, axis=1).pvalue
    assert 0.75 < np.mean(p < 0.05) < 0.85
    with pytest.raises(ValueError):
        m.detectable_effect(0.1, 1)
    with pytest.raises(ValueError):
        m.users_needed(0.0, 0.1)


def test_differences_come_from_the_runs_rankings(tmp_path, script):
    m = script("effect_size")
    rows = [("agent", "u1", "test", 1), ("memory", "u1", "test", 3), ("agent", "u2", "test", None),
            ("memory", "u2", "test", 2), ("agent", "u3", "test", 5), ("agent", "u1", "validation", 9),
            ("pop", "u1", "test", 1)]
    f = tmp_path / "rankings.jsonl"
    f.write_text("\n".join(json.dumps({"model": a, "user_id": u, "stage": s, "target_rank": r}) for a, u, s, r in rows))
    d = m.paired_differences(f, "agent", "memory")
    # u1: 1/log2(2) - 1/log2(4); u2: 0 - 1/log2(3); u3 has no memory row
    np.testing.assert_allclose(d, [1 - 0.5, -1 / math.log2(3)])
    with pytest.raises(SystemExit, match="no user ranked by both"):
        m.paired_differences(f, "agent", "sasrec")
