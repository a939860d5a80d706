from __future__ import annotations

from collections import Counter

from eval import make_synthetic


def test_seeded_and_truth_is_planted() -> None:
    a, truth = make_synthetic(n_users=40, n_items=600, seed=5, p_noise=0.0)
    b, _ = make_synthetic(n_users=40, n_items=600, seed=5, p_noise=0.0)
    assert [(e.user_id, e.item_id, e.timestamp) for e in a.interactions] == [
        (e.user_id, e.item_id, e.timestamp) for e in b.interactions
    ]
    c, _ = make_synthetic(n_users=40, n_items=600, seed=6)
    assert [e.item_id for e in a.interactions] != [e.item_id for e in c.interactions]
    agree = total = 0
    before_long = after_drift = 0
    for uid, seq in a.sequences.items():
        plan = truth.users[uid]
        assert len({e.item_id for e in seq}) == len(seq)  # no repeats: nothing hidden by the exclusion
        assert plan.drift_time == seq[plan.drift_index].time
        for idx, e in enumerate(seq):
            cat = truth.item_category[e.item_id]
            total += 1
            agree += cat == plan.expected_category(e.time, idx)
            if not plan.in_window(e.time):
                before_long += idx < plan.drift_index and cat == plan.long_term
                after_drift += idx >= plan.drift_index and cat == plan.drift_to
        in_window = [truth.item_category[e.item_id] for e in seq if plan.in_window(e.time)]
        if len(in_window) >= 5:
            assert Counter(in_window).most_common(1)[0][0] == plan.periodic
    # Expected-category agreement is ~p_periodic inside the window and 1 outside (exhausted categories aside).
    assert agree / total > 0.8
    assert before_long > 0 and after_drift > 0
    assert a.items["i0"].genres == (truth.item_category["i0"],)
