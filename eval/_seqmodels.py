"""The trained sequential models by name, as ``tide eval`` and the agent's candidate stage use them.

``lstm`` / ``sasrec`` learn item ID embeddings; ``+text`` adds a learned projection of each item's
sentence-transformers vector (the memory's packaged MiniLM), ``+llm`` one of the embedded LLM's mean-pooled
hidden states (computed once per catalogue and cached, see :class:`eval.ItemFeatures`).
"""

from __future__ import annotations

from typing import Any

from eval._data import Dataset
from eval._errors import EvalError
from eval._itemfeatures import ItemFeatures

__all__ = ["RETRIEVER_MIX", "RETRIEVER_PREFERENCE", "SEQUENTIAL_MODELS", "build_sequential", "pick_retriever",
           "pick_retrievers"]

SEQUENTIAL_MODELS = ("lstm", "lstm+text", "lstm+llm", "sasrec", "sasrec+text", "sasrec+llm")
#: when several sequential models run, the agent's candidate stage uses the first of these present.
#: Order: validation recall@20 over all 943 ML-100k users, mean of 3 seeds (docs/results/seq-models.md,
#: 2026-12-01, the LSTM at its validation-chosen lr 5e-3): lstm+text 0.3789, lstm+llm 0.3570, lstm 0.3563,
#: sasrec+text 0.3556, sasrec+llm 0.3521, sasrec 0.3517. lstm+text leads by 0.022; the rest differ by less
#: than the standard error (~0.015 at 943 users), ties broken toward the models that need no item-vector
#: pass (lstm, sasrec), then the sentence-transformer vectors (cheap) before the LLM's.
RETRIEVER_PREFERENCE = ("lstm+text", "lstm", "sasrec", "sasrec+text", "lstm+llm", "sasrec+llm")

#: when all of these run, the candidate stage reads them together, each min-max normalised and weighted
#: (``eval.SequentialMix``). Chosen on a test-like validation (scripts/retriever_mix.py --testlike, third
#: rule; docs/results/retriever-mix-validation-testlike.json): both models refitted without each user's last
#: training item, so that, as at test, the history's newest item is one they never trained on (plain
#: validation inflates them: lstm+text 0.141 there, 0.128 test-like, 0.117 on test). Best of {0..8}^2 on the
#: even half of all 943 ML-100k users, tested on the odd half against lstm+text alone at w_seq 2:
#: NDCG@10 0.1315 vs 0.1098, +0.022 [+0.011, +0.034], p 0.001 / Wilcoxon 0.0004.
RETRIEVER_MIX = (("lstm+text", 6.0), ("sasrec", 3.0))

_FEATURES: dict[tuple[str, str, int], ItemFeatures] = {}


def _features(kind: str, dataset: Dataset) -> ItemFeatures:
    key = (kind, dataset.name, len(dataset.items))
    if key not in _FEATURES:  # one computation per process and catalogue (the LLM's is also cached on disk)
        if kind == "text":
            from memory import SentenceTransformerEmbedder

            _FEATURES[key] = ItemFeatures.from_embedder(dataset, SentenceTransformerEmbedder.from_package())
        else:
            _FEATURES[key] = ItemFeatures.from_llm(dataset)
    return _FEATURES[key]


def build_sequential(name: str, dataset: Dataset, *, seed: int = 0, max_epochs: int | None = None) -> Any:
    """An unfitted sequential predictor by name (see ``SEQUENTIAL_MODELS``) with its default config.

    Raises:
        EvalError: An unknown name.
    """
    from eval._lstm import LSTMConfig, LSTMPredictor
    from eval._sasrec import SASRecConfig, SASRecPredictor

    if name not in SEQUENTIAL_MODELS:
        raise EvalError(f"unknown sequential model {name!r}; choose from {', '.join(SEQUENTIAL_MODELS)}")
    base, _, kind = name.partition("+")
    features = _features(kind, dataset) if kind else None
    overrides: dict[str, Any] = {"seed": seed} | ({"max_epochs": max_epochs} if max_epochs else {})
    if base == "lstm":
        return LSTMPredictor(LSTMConfig(**overrides), name=name, features=features)
    return SASRecPredictor(SASRecConfig(**overrides), name=name, features=features)


def pick_retriever(models: dict[str, Any], wanted: str | None = "auto") -> Any | None:
    """The sequential model that feeds the agent's candidate stage.

    Args:
        models: Name -> sequential predictor, the ones this run trains.
        wanted: A name among ``models``, ``"auto"`` (the first of ``RETRIEVER_PREFERENCE`` present) or
            None / ``"none"`` (no sequential source).

    Raises:
        EvalError: ``wanted`` names a model this run does not train.
    """
    if wanted is None or wanted == "none":
        return None
    if wanted == "auto":
        return next((models[n] for n in RETRIEVER_PREFERENCE if n in models), None)
    if wanted not in models:
        raise EvalError(f"retriever {wanted!r} is not among the trained models {sorted(models)}")
    return models[wanted]


def pick_retrievers(models: dict[str, Any], wanted: str | None = "auto") -> list[tuple[Any, float | None]]:
    """The sequential models that feed the agent's candidate stage, each with its weight.

    Args:
        models: Name -> sequential predictor, the ones this run trains.
        wanted: ``"auto"``: ``RETRIEVER_MIX`` when this run trains all of its models, else
            :func:`pick_retriever`'s choice alone; ``"name"`` (weight None: the agent's ``w_seq``);
            ``"name:weight,name:weight"``; None / ``"none"``: no sequential source.

    Returns:
        ``(model, weight)`` pairs; a single model with weight None is read at ``RetrievalConfig.w_seq``.

    Raises:
        EvalError: a name this run does not train, a malformed or negative weight, or a name twice.
    """
    if wanted == "auto" and all(n in models for n, _ in RETRIEVER_MIX):
        return [(models[n], w) for n, w in RETRIEVER_MIX]
    if wanted is None or wanted in ("auto", "none") or ("," not in wanted and ":" not in wanted):
        one = pick_retriever(models, wanted)
        return [] if one is None else [(one, None)]
    out: list[tuple[Any, float | None]] = []
    names: list[str] = []
    for part in wanted.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise EvalError(f"retriever {part!r}: the weight after ':' must be a number") from None
        if not w >= 0:
            raise EvalError(f"retriever {part!r}: the weight must be >= 0")
        if name in names:
            raise EvalError(f"retriever {name!r} is named twice in {wanted!r}")
        names.append(name)
        out.append((pick_retriever(models, name), w))
    return out
