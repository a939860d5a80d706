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


def test_habits_are_planted_with_places() -> None:
    from eval._habits import slot_of

    ds, truth = make_synthetic(n_users=40, seed=3, habits=True, p_noise=0.0)
    again, _ = make_synthetic(n_users=40, seed=3, habits=True, p_noise=0.0)
    assert [(e.item_id, e.timestamp, e.lat) for e in ds.interactions] == [
        (e.item_id, e.timestamp, e.lat) for e in again.interactions]
    by_slot: dict[str, Counter[bool]] = {}
    for uid, seq in ds.sequences.items():
        plan = truth.users[uid]
        assert len({h.category for h in plan.habits} | {plan.long_term, plan.drift_to}) == 5
        places = {p.name: p for p in plan.places}
        assert set(places) == {"home", "work", "out"}
        for idx, e in enumerate(seq):
            assert e.lat is not None and e.lon is not None and e.place in places
            slot = slot_of(e.time)
            habit = next((h for h in plan.habits if h.slot == slot), None)
            if habit is not None:
                assert (e.lat, e.lon) == (habit.place.lat, habit.place.lon)
                by_slot.setdefault(slot, Counter())[truth.item_category[e.item_id] == habit.category] += 1
            assert plan.expected_category(e.time, idx) == (habit.category if habit else
                                                           plan.drift_to if idx >= plan.drift_index else plan.long_term)
    assert set(by_slot) == {"work", "evening", "weekend"}
    for counts in by_slot.values():  # ~p_habit of slot events are the habit's category
        assert counts[True] / (counts[True] + counts[False]) > 0.75
    rows = list(ds.behavior_rows(ds.user_ids[0]))
    assert rows[0]["lat"] is not None and rows[0]["place"] in {"home", "work", "out"}
