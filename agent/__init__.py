"""Tide's agent: talks to the LLM (vLLM in-process or a ``vllm serve`` fleet) and decides.

Heavy imports (vllm, torch) happen inside the engine adapters, so ``import agent`` is fast.
"""

from ._engine import (
    BASE_FORMAT_VERSION,
    ChoiceScores,
    Completion,
    GenerationRequest,
    LLMEngine,
    Message,
    render_base_prompt,
    render_messages,
)
from ._engines import BackgroundEngine, make_engine
from ._errors import (
    AgentError,
    EngineError,
    EngineUnavailableError,
    FeedbackError,
    ModelPreparationError,
    StructuredOutputError,
    TideError,
    UnknownItemError,
    UnknownUserError,
)
from ._model import (
    EMBEDDED_MODEL_NAME,
    ensure_model,
    load_manifest,
    model_dir,
    prepare_model,
    tide_home,
    verify_files,
    verify_with_engine,
)
from ._models_registry import KNOWN_MODELS, ModelSpec, known_model_names
from ._openai import OpenAIEngine, OpenAIEngineConfig
from ._structured import StructuredResult, generate_structured, schema_for
from ._vllm import VERIFY_DTYPE, VLLMEngine, VLLMEngineConfig, default_dtype

__all__ = [
    "BASE_FORMAT_VERSION",
    "EMBEDDED_MODEL_NAME",
    "KNOWN_MODELS",
    "VERIFY_DTYPE",
    "AgentError",
    "ChoiceScores",
    "Completion",
    "EngineError",
    "EngineUnavailableError",
    "FeedbackError",
    "GenerationRequest",
    "LLMEngine",
    "Message",
    "ModelPreparationError",
    "ModelSpec",
    "OpenAIEngine",
    "OpenAIEngineConfig",
    "StructuredOutputError",
    "StructuredResult",
    "TideError",
    "UnknownItemError",
    "UnknownUserError",
    "VLLMEngine",
    "VLLMEngineConfig",
    "default_dtype",
    "ensure_model",
    "generate_structured",
    "known_model_names",
    "load_manifest",
    "make_engine",
    "minmax_rows",
    "model_dir",
    "prepare_model",
    "render_base_prompt",
    "render_messages",
    "schema_for",
    "tide_home",
    "verify_files",
    "verify_with_engine",
]

from ._agent import InterestAgent  # noqa: E402
from ._candidates import CandidateSource, RetrievalConfig, TransitionIndex  # noqa: E402
from ._catalog import Catalog, CatalogItem  # noqa: E402
from ._config import AgentConfig  # noqa: E402
from ._context import UserContext, query_context  # noqa: E402
from ._feedback import SIGNALS, FeedbackConfig, feedback_adjustment  # noqa: E402
from ._free_tags import FreeTag, FreeTagConfig, ground_free_tags, propose_free_tags  # noqa: E402
from ._interests import ground_interests, render_interest_prompt  # noqa: E402
from ._itemhead import (  # noqa: E402
    CatalogScores,
    ItemHeadConfig,
    ItemHeadScorer,
    item_head_key,
    rating_level,
    training_windows,
)
from ._itemhead_backbone import HEADER as ITEM_HEAD_HEADER  # noqa: E402
from ._itemhead_backbone import RATED_LINE as ITEM_HEAD_RATED_LINE  # noqa: E402
from ._itemhead_interests import best_f1_set  # noqa: E402
from ._itemhead_tune import find_item_head, tune_item_head  # noqa: E402
from ._rerank import CHOICE_LABELS, ChoiceProbs, choice_orders, content_free_prompt, render_choice_prompt  # noqa: E402
from ._retrieval import ScoredUser, minmax_rows  # noqa: E402
from ._schemas import (  # noqa: E402
    ChatReply,
    Drift,
    Interest,
    InterestPrediction,
    InterestSummary,
    Provenance,
    RankedItem,
    SummaryFacts,
    interest_output_model,
)

__all__ += [
    "CHOICE_LABELS",
    "ITEM_HEAD_HEADER",
    "ITEM_HEAD_RATED_LINE",
    "SIGNALS",
    "AgentConfig",
    "BackgroundEngine",
    "CandidateSource",
    "Catalog",
    "CatalogItem",
    "CatalogScores",
    "ChatReply",
    "ChoiceProbs",
    "Drift",
    "FeedbackConfig",
    "FreeTag",
    "FreeTagConfig",
    "Interest",
    "InterestAgent",
    "ItemHeadConfig",
    "ItemHeadScorer",
    "InterestPrediction",
    "InterestSummary",
    "Provenance",
    "RankedItem",
    "RetrievalConfig",
    "ScoredUser",
    "SummaryFacts",
    "TransitionIndex",
    "UserContext",
    "best_f1_set",
    "choice_orders",
    "content_free_prompt",
    "feedback_adjustment",
    "ground_free_tags",
    "propose_free_tags",
    "ground_interests",
    "query_context",
    "render_choice_prompt",
    "interest_output_model",
    "render_interest_prompt",
]

from ._tune import TuneConfig, record_metrics, tune_key, tune_model, tuned_dir, tuned_info  # noqa: E402
from ._tune_data import (  # noqa: E402
    LETTERS,
    TuneDataConfig,
    TuneDataError,
    TuneExample,
    build_examples,
    data_fingerprint,
    rank_short_prompt,
    ranked_examples,
    reorder,
)

__all__ += [
    "LETTERS",
    "TuneConfig",
    "TuneDataConfig",
    "TuneDataError",
    "TuneExample",
    "build_examples",
    "data_fingerprint",
    "find_item_head",
    "item_head_key",
    "rating_level",
    "training_windows",
    "tune_item_head",
    "rank_short_prompt",
    "ranked_examples",
    "record_metrics",
    "reorder",
    "tune_key",
    "tune_model",
    "tuned_dir",
    "tuned_info",
]
