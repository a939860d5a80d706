from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pytest

from eval import (
    EvalError,
    FullScorer,
    LLMTimed,
    PopularityPredictor,
    Predictor,
    Ranking,
    RankRequest,
    Split,
    StageAware,
    Tunable,
    format_paired,
    format_table,
    interest_shares,
    leave_one_out,
    make_synthetic,
    plot_interest_timeline,
    run_evaluation,
    sample_users,
    top_k_excluding,
    tune_predictors,
    tuning_users,
    without_last,
)


class KnobPredictor:
    """Popularity or anti-popularity depending on a tunable knob, to exercise the tuning hook."""

    def __init__(self, name: str = "random") -> None:
        self.name = name
        self.tunable = {"mix": [0.0, 1.0]}
        self.mix = 0.5
        self.calls: list[dict] = []
        self.stages: list[str] = []
        self.stage_targets: list[dict | None] = []
        self._pop = PopularityPredictor()

    def set_stage(self, stage: str, targets=None) -> None:
        self.stages.append(stage)
        self.stage_targets.append(targets)

    def set_params(self, **params) -> None:
        self.calls.append(params)
        self.mix = params["mix"]

    def fit(self, split: Split) -> None:
        self._pop.fit(split)
        self._items = split.item_ids

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        if self.mix >= 0.5:  # popularity order
            return self._pop.rank(requests, k)
        # mix=0: least popular first (a deliberately bad setting that tuning must reject)
        scores = -self._pop.score_all(requests)
        index = {item: i for i, item in enumerate(self._items)}
        out = top_k_excluding(scores, requests, self._items, index, k)
        for ranking in out:
            ranking.info["valid"] = False
        return out


@pytest.fixture(scope="module")
def synth_split():
    dataset, _ = make_synthetic(n_users=80, n_items=600, seed=1)
    return dataset, leave_one_out(dataset)


def test_run_writes_everything_and_tunes_on_validation(synth_split, tmp_path) -> None:
    dataset, split = synth_split
    rnd = KnobPredictor()
    result = run_evaluation(
        dataset, [PopularityPredictor(), rnd], split, users=30, seed=4, out_dir=tmp_path,
        n_bootstrap=200, progress=False,
    )
    assert len(result.users) == 30 and result.users == sample_users(split, 30, 4)
    assert [c["mix"] for c in rnd.calls] == [0.0, 1.0, 1.0]  # grid, then the best (popularity) re-applied
    assert rnd.stages == ["val", "test"]  # StageAware: told before the grid and before test ranking
    # validation targets go with "val" (to skip work that cannot move them), none with "test"
    assert rnd.stage_targets == [{u: split.val[u].item_id for u in result.users}, None]
    tuning = result.summary.models["random"].tuning
    assert tuning is not None and tuning.best == {"mix": 1.0}
    assert tuning.trials[1].ndcg_at_10 > tuning.trials[0].ndcg_at_10
    assert result.summary.models["pop"].tuning is None  # not Tunable
    for name in ("config.json", "rankings.jsonl", "summary.json", "results.md", "metrics.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["eval"]["seed"] == 4 and config["predictors"]["pop"]["class"] == "PopularityPredictor"
    lines = [json.loads(x) for x in (tmp_path / "rankings.jsonl").read_text().splitlines()]
    assert len(lines) == 60 and {x["stage"] for x in lines} == {"test"}
    assert all(len(x["item_ids"]) <= 50 and x["target"] == split.test[x["user_id"]].item_id for x in lines)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary.to_dict()))  # the typed summary is what was written
    assert list(summary) == ["dataset", "split", "n_users", "n_test_users_available", "protocol",
                             "catalogue_size", "sampled_negatives", "models", "significance", "stage_seconds",
                             "environment"]
    env = summary["environment"]
    assert env["python_hash_seed"] == os.environ.get("PYTHONHASHSEED") and env["cpus"] == os.cpu_count()
    assert env["versions"]["numpy"] == np.__version__
    assert "## Environment" in (tmp_path / "results.md").read_text()
    assert list(summary["models"]["random"]) == ["metrics", "interest", "valid_rate", "throughput_users_per_s",
                                                 "latency_ms_per_user", "fit_seconds", "config", "tuning",
                                                 "sampled"]
    assert summary["models"]["random"]["tuning"]["results"][0] == {"params": {"mix": 0.0},
                                                                   "ndcg@10": tuning.trials[0].ndcg_at_10}
    pop = summary["models"]["pop"]
    assert pop["metrics"]["ndcg@10"]["low"] <= pop["metrics"]["ndcg@10"]["mean"] <= pop["metrics"]["ndcg@10"]["high"]
    assert pop["sampled"]["exact"] is True and summary["models"]["random"]["sampled"]["exact"] in (True, False)
    # With no baselines named, each model is tested against every model listed before it.
    assert {(s["model"], s["baseline"]) for s in summary["significance"]} == {("random", "pop")}
    sig = summary["significance"]
    assert {s["metric"] for s in sig} == {"ndcg@10", "hr@10", "mrr@10", "interest_f1"}
    # mix=1.0 won tuning, so "random" ranks exactly like popularity on test: no difference at all.
    assert all(s["mean_diff"] == 0 and s["p_wilcoxon"] == 1.0 for s in sig)
    paired = format_paired(result.summary, "random").splitlines()
    assert len(paired) == 2 and paired[0].startswith("random - pop ndcg@10: +0.0000 [+0.0000, +0.0000]")
    assert paired[1].startswith("random - pop interest_f1: +0.0000") and paired[1].endswith(", 1 (Wilcoxon)")
    assert format_paired(result.summary, "pop") == ""  # tested against nothing
    assert "total" in summary["stage_seconds"] and pop["throughput_users_per_s"] > 0
    assert "| pop |" in (tmp_path / "results.md").read_text()
    assert "NDCG@10" in format_table(summary)
    # Recomputing a metric from rankings.jsonl gives the summary's value.
    hits = [x["target_rank"] is not None and x["target_rank"] <= 10 for x in lines if x["model"] == "pop"]
    assert np.mean(hits) == pytest.approx(pop["metrics"]["hr@10"]["mean"])


def test_optional_capabilities_are_protocols() -> None:
    knob, pop = KnobPredictor(), PopularityPredictor()
    assert isinstance(knob, Predictor) and isinstance(knob, Tunable) and isinstance(knob, StageAware)
    assert isinstance(pop, FullScorer) and not isinstance(pop, Tunable) and not isinstance(pop, StageAware)
    assert not isinstance(pop, LLMTimed)


def test_same_seed_same_numbers(synth_split) -> None:
    dataset, split = synth_split
    runs = [
        run_evaluation(dataset, [PopularityPredictor()], split, users=25, seed=9, n_bootstrap=100, progress=False)
        for _ in range(2)
    ]
    assert runs[0].users == runs[1].users
    assert runs[0].summary.models["pop"].metrics == runs[1].summary.models["pop"].metrics
    assert runs[0].summary.models["pop"].sampled == runs[1].summary.models["pop"].sampled


def test_rejects_a_predictor_that_ranks_consumed_items(synth_split) -> None:
    dataset, split = synth_split

    class Leaky:
        name = "leaky"

        def fit(self, split: Split) -> None:
            pass

        def rank(self, requests, k):
            return [Ranking(list(r.history)[:k], [0.0] * min(k, len(r.history))) for r in requests]

    with pytest.raises(EvalError, match="consumed"):
        run_evaluation(dataset, [Leaky()], split, users=5, progress=False)
    with pytest.raises(EvalError, match="baselines"):
        run_evaluation(dataset, [PopularityPredictor()], split, users=5, progress=False, baselines=["nope"])
    with pytest.raises(EvalError, match="unique"):
        run_evaluation(dataset, [PopularityPredictor(), PopularityPredictor()], split, users=5, progress=False)


def test_interest_timeline_plot(synth_split, tmp_path) -> None:
    dataset, split = synth_split
    uid = split.test_users[0]
    shares = interest_shares(dataset, uid, window=5, until=split.test[uid].timestamp)
    assert len(shares.times) == len(dataset.sequences[uid]) - 1
    for i in range(len(shares.times)):
        assert sum(v[i] for v in shares.short.values()) == pytest.approx(1.0)
        assert sum(v[i] for v in shares.long.values()) == pytest.approx(1.0)
    path = plot_interest_timeline(shares.times, shares.short, shares.long, tmp_path / "u.png", title=uid,
                                  now=shares.times[-1])
    assert path.stat().st_size > 1000


def test_interest_shares_short_horizon_decays_like_the_memory_profile() -> None:
    """With a half-life, the short-term share weights each event by 2^-(age/half-life) from the latest one:
    a user who moved from Comedy to Action within one session shows it only when the half-life is short."""
    from eval import Dataset, Interaction, Item

    items = {"c": Item("c", "C", None, ("Comedy",), "C"), "a": Item("a", "A", None, ("Action",), "A")}
    t0 = 1_000_000
    seq = [Interaction("u", "c", 4.0, t0 + 60 * i) for i in range(6)]
    seq += [Interaction("u", "a", 4.0, t0 + 360 + 60 * i) for i in range(4)]
    dataset = Dataset("toy", items, {}, seq)
    week = interest_shares(dataset, "u", short_half_life_days=7.0, top_genres=2)
    minutes = interest_shares(dataset, "u", short_half_life_days=60 / 86400, top_genres=2)
    # a week-long half-life over 10 minutes: the short horizon is the long one (up to ~1e-5)
    assert week.short["Comedy"][-1] == pytest.approx(week.long["Comedy"][-1], abs=1e-4) == pytest.approx(0.6)
    # one-minute half-life: the last event weighs 1, the one before 1/2, ...; Comedy's events are 4..9 minutes old
    comedy = sum(2.0 ** -(4 + k) for k in range(6))
    action = sum(2.0 ** -k for k in range(4))
    assert minutes.short["Action"][-1] == pytest.approx(action / (action + comedy))
    assert minutes.short["Action"][-1] > 0.9 > minutes.long["Action"][-1]


class OneUserKnob(KnobPredictor):
    """Popularity; with mix=1 it also puts ``boosted`` validation users' targets first: from one user, a better
    mean on validation which must not displace the reference setting."""

    def __init__(self, reference: dict | None, name: str = "oneuser", boosted: int = 1) -> None:
        super().__init__(name)
        self.tune_reference = reference
        self.boosted = boosted
        self._targets: dict = {}

    def set_stage(self, stage: str, targets=None) -> None:
        super().set_stage(stage, targets)
        self._targets = dict(targets or {})

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        out = self._pop.rank(requests, k)
        if self.mix >= 0.5 and self._targets:
            for j, r in enumerate(requests[: self.boosted]):
                target = self._targets[r.user_id]
                out[j] = Ranking([target] + [i for i in out[j].item_ids if i != target][: k - 1], out[j].scores)
        return out


def test_a_tune_reference_stays_unless_beaten_significantly(synth_split, tmp_path) -> None:
    dataset, split = synth_split
    slight, strong = OneUserKnob({"mix": 0.0}), OneUserKnob({"mix": 0.0}, "strong", boosted=30)
    result = run_evaluation(dataset, [slight, strong], split, users=30, seed=4, out_dir=tmp_path,
                            n_bootstrap=200, progress=False)
    t = result.summary.models["oneuser"].tuning
    assert t.trials[1].ndcg_at_10 > t.trials[0].ndcg_at_10  # the grid's best by mean ...
    assert t.best == {"mix": 0.0} and slight.mix == 0.0  # ... is noise from one user: the reference stays
    assert t.against_reference["kept"] == "reference" and t.against_reference["best_grid_point"] == {"mix": 1.0}
    assert t.against_reference["mean_diff"] > 0 and t.against_reference["p_bootstrap"] >= 0.05
    s = result.summary.models["strong"].tuning
    assert s.best == {"mix": 1.0} and strong.mix == 1.0 and s.against_reference["kept"] == "best grid point"
    assert s.against_reference["p_bootstrap"] < 0.05 and s.against_reference["p_wilcoxon"] < 0.05
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["models"]["oneuser"]["tuning"]["reference"] == {"mix": 0.0}
    assert "reference {'mix': 0.0} kept unless beaten" in (tmp_path / "results.md").read_text()
    with pytest.raises(EvalError, match="not a point of its grid"):
        run_evaluation(dataset, [OneUserKnob({"mix": 0.5})], split, users=10, seed=4, out_dir=tmp_path / "bad",
                       n_bootstrap=50, progress=False)


def test_tune_users_adds_other_users_validation_targets(synth_split, tmp_path) -> None:
    dataset, split = synth_split
    knob = KnobPredictor()
    result = run_evaluation(dataset, [knob], split, users=10, seed=4, out_dir=tmp_path, n_bootstrap=50,
                            progress=False, tune_users=40)
    val_targets = knob.stage_targets[knob.stages.index("val")]
    assert len(val_targets) == 40 and set(result.users) <= set(val_targets)  # the evaluated users, then others
    assert all(item == split.val[u].item_id for u, item in val_targets.items())  # validation targets only
    assert result.summary.models["random"].tuning.n_users == 40
    assert "on 40 users' validation targets" in (tmp_path / "results.md").read_text()
    # seeded, and the test sample is the one without extra tuning users
    again, plain = KnobPredictor(), KnobPredictor()
    run_evaluation(dataset, [again], split, users=10, seed=4, n_bootstrap=50, progress=False, tune_users=40)
    assert again.stage_targets[again.stages.index("val")] == val_targets
    base = run_evaluation(dataset, [plain], split, users=10, seed=4, n_bootstrap=50, progress=False)
    assert base.users == result.users and len(plain.stage_targets[plain.stages.index("val")]) == 10
    # fewer than the evaluated users: the evaluated users alone; more than there are: every user
    few, every = KnobPredictor(), KnobPredictor()
    run_evaluation(dataset, [few], split, users=10, seed=4, n_bootstrap=50, progress=False, tune_users=3)
    assert len(few.stage_targets[few.stages.index("val")]) == 10
    run_evaluation(dataset, [every], split, users=10, seed=4, n_bootstrap=50, progress=False, tune_users=10_000)
    assert len(every.stage_targets[every.stages.index("val")]) == len(split.val)


class RecordingKnob(KnobPredictor):
    """A knob that records what it was fitted on and the histories it was asked to rank."""

    def __init__(self, name: str = "random") -> None:
        super().__init__(name)
        self.fitted_on: dict[str, list[str]] = {}
        self.histories: list[dict[str, tuple[str, ...]]] = []

    def fit(self, split: Split) -> None:
        super().fit(split)
        self.fitted_on = {u: list(s) for u, s in split.train.items()}

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        self.histories.append({r.user_id: tuple(r.history) for r in requests})
        return super().rank(requests, k)


def test_testlike_tuning_reads_the_validation_items_from_models_fitted_without_them(synth_split, tmp_path) -> None:
    dataset, split = synth_split
    tsplit = leave_one_out(without_last(dataset))
    users = tuning_users(split, sample_users(split, 40, 4), None, 4)
    tuner = RecordingKnob()
    preset = tune_predictors([PopularityPredictor(), tuner], tsplit, users, stage="test", on="test-like validation",
                             n_bootstrap=50, progress=False)
    assert list(preset) == ["random"] and preset["random"].best == {"mix": 1.0}  # pop is not Tunable
    assert preset["random"].on == "test-like validation" and preset["random"].n_users == 40
    # the targets are the real validation items; the models never trained on each user's last training item,
    # which is the newest item of the history they rank from (as at the real test target)
    assert tuner.stage_targets[0] == {u: split.val[u].item_id for u in users}
    for u in users:
        assert tuner.fitted_on[u] == split.train[u][:-1]
        assert tuner.histories[0][u] == tuple(split.train[u])
    # the real run fits fresh models on the real split and applies the settings without a grid search
    fresh = RecordingKnob()
    result = run_evaluation(dataset, [PopularityPredictor(), fresh], split, users=40, seed=4, out_dir=tmp_path,
                            n_bootstrap=50, progress=False, preset=preset)
    assert fresh.calls == [{"mix": 1.0}] and fresh.stages == ["test"]
    assert fresh.fitted_on == split.train
    assert result.summary.models["random"].tuning.on == "test-like validation"
    assert "on 40 users' test-like validation targets" in (tmp_path / "results.md").read_text()
    with pytest.raises(EvalError, match="not evaluated"):
        run_evaluation(dataset, [PopularityPredictor()], split, users=5, n_bootstrap=50, progress=False, preset=preset)
    with pytest.raises(EvalError, match="takes no settings"):
        run_evaluation(dataset, [PopularityPredictor("random")], split, users=5, n_bootstrap=50, progress=False,
                       preset=preset)
    with pytest.raises(EvalError, match="no test target"):
        tune_predictors([RecordingKnob()], tsplit, ["nobody"], stage="test", progress=False)
