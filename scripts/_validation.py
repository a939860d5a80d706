"""The set-up the validation scripts share (scripts/prompt_check.py, item_head_*.py, retriever_mix.py,
learned_blend.py, ...): sampled ML-100k users with memory filled up to their VALIDATION item, the memory
candidate stage (w_co 1, 10-minute short half-life: the memory model's validation choice in the main job), the
embedded engine, an item head's logits over the catalogue, and the sequential models fitted test-like."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from agent import AgentConfig, InterestAgent, TransitionIndex, VLLMEngine
from eval import leave_one_out, load_ml100k, sample_users, to_datetime
from eval._tide import MemorySync, catalog_from_dataset  # scripts may use the harness's parts
from memory import MemoryStore, SentenceTransformerEmbedder


def validation_setup(n_users: int | str, seed: int, retrieval: dict[str, Any] | None = None, *,
                     engine: bool = True, rest: bool = False) -> SimpleNamespace:
    """``ds, split, users, catalog, engine, base`` (the agent), ``nows`` and ``kw`` (histories, excludes) of
    the sampled validation requests, in ``users`` order. With ``rest``, the users are those OUTSIDE the seeded
    sample of ``n_users`` (a confirmation on users a decision has not seen). The caller closes ``engine``
    (None with ``engine=False``)."""
    ds = load_ml100k()
    split = leave_one_out(ds)
    users = [u for u in sample_users(split, n_users, seed) if u in split.val]
    if rest:
        seen = set(users)
        users = [u for u in sorted(split.val) if u not in seen]
    emb = SentenceTransformerEmbedder.from_package()
    store = MemoryStore.open(Path(tempfile.mkdtemp()) / "memory", embedder=emb)
    store.reconfigure(short_half_life_days=1 / 144)
    catalog = catalog_from_dataset(ds, emb)
    requests = [split.request(u, "val") for u in users]
    t0 = time.perf_counter()
    MemorySync(store, ds, progress=False).sync(requests)
    print(f"memory: {len(users)} users in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    engine = VLLMEngine.from_defaults() if engine else None
    base = InterestAgent(store, catalog, engine, AgentConfig(retrieval={"w_co": 1.0, **(retrieval or {})}))
    base = base.with_sources(transitions=TransitionIndex.fit(split.train, catalog.index))
    return SimpleNamespace(
        ds=ds, split=split, users=users, catalog=catalog, engine=engine, base=base,
        nows=[to_datetime(int(r.now)) for r in requests],
        kw={"histories": [list(r.history) for r in requests], "excludes": [list(r.exclude) for r in requests]})


def cached_arrays(path: Path, compute: Any) -> dict[str, Any]:
    """The arrays saved at ``path`` (npz), or ``compute()``'s, saved there first."""
    import numpy as np

    if path.exists():
        return dict(np.load(path))
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def memory_stage(v: SimpleNamespace) -> SimpleNamespace:
    """The memory candidate stage's scores for ``validation_setup``'s users (``memory``: users x catalogue,
    consumed items ``-inf``), its ``finite`` mask, the validation ``targets`` (catalogue indices) and ``mm``:
    min-max over each user's unconsumed items, the stage's normalisation, for fusing other scores with it."""
    import numpy as np

    scored = v.base.score_candidates(v.users, v.nows, **v.kw)
    memory = np.stack([s.retrieval for s in scored])
    finite = np.isfinite(memory)
    targets = np.array([v.catalog.index[v.split.val[u].item_id] for u in v.users])

    def mm(x: np.ndarray) -> np.ndarray:
        lo = np.where(finite, x, np.inf).min(axis=1, keepdims=True)
        hi = np.where(finite, x, -np.inf).max(axis=1, keepdims=True)
        return np.where(finite, (x - lo) / np.where(hi > lo, hi - lo, 1.0), -np.inf)

    return SimpleNamespace(memory=memory, finite=finite, targets=targets, mm=mm)


def catalogue_logits(folder: Path, titles: dict[str, str], histories: list[list[str]], item_ids: list[str], *,
                     label: str = "item head", every: int = 100, dtype: Any = None,
                     branch: Any = None) -> tuple[Any, Any]:
    """The item head at ``folder`` (``agent.ItemHeadScorer`` over ``titles``) and its logits after each history,
    in ``item_ids``' order (histories x items, ``dtype``: float32 by default), with a progress line every
    ``every`` histories. ``branch``: the sequence branch's module, for a head trained with one."""
    import numpy as np

    from agent import ItemHeadScorer

    scorer = ItemHeadScorer(folder, titles, branch=branch)
    cols = np.array([scorer.index[i] for i in item_ids])
    logits = np.zeros((len(histories), len(item_ids)), dtype=dtype or np.float32)
    t0 = time.perf_counter()
    for i, hist in enumerate(histories):
        logits[i] = scorer.scores([hist])[0][cols]
        if i % every == 0:
            print(f"{label}: {i}/{len(histories)} users, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return scorer, logits


def testlike_scores(ds: Any, users: list[str], seed: int, models: tuple[str, ...] = ("lstm+text", "sasrec")
                    ) -> dict[str, Any]:
    """Each sequential model in ``models`` fitted on ``leave_one_out(without_last(ds))`` (each user's last
    training item removed, as the harness's ``--validation auto``) and its scores (users x catalogue, float32)
    for the real validation target after the whole training sequence."""
    import numpy as np

    from eval import build_sequential, leave_one_out, without_last

    ds2 = without_last(ds)
    split2, split = leave_one_out(ds2), leave_one_out(ds)
    requests = [split2.request(str(u), "test") for u in users]  # split2's test target = the real validation item
    for r in requests:
        assert r.history == split.train[r.user_id] and split2.test[r.user_id] == split.val[r.user_id]
    out: dict[str, Any] = {}
    for name in models:
        t0 = time.perf_counter()
        model = build_sequential(name, ds2, seed=seed)
        model.fit(split2)
        out[name] = np.asarray(model.score_all(requests), dtype=np.float32)
        print(f"{name} (test-like): fitted and scored in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out
