"""Offline evaluation of next-interest predictors: data, splits, baselines, metrics and the runner.

Protocol (see ``docs``/ANCHORS): sequences sorted by raw timestamp with a stable sort, per-user
leave-one-out or a global temporal cut, full ranking over the catalogue with every previously consumed
item excluded, HR/NDCG/MRR with bootstrap CIs and paired tests. torch is imported only by the LSTM, on use.
"""

from eval._auc import auc_from_list, auc_from_rank, auc_from_scores, per_user_auc
from eval._behaviors import BEHAVIOR_COLUMNS, RejectedRow, load_behaviors_file, parse_behavior, validate_rows
from eval._catalogs import dataset_popularity, load_catalog
from eval._data import (
    Dataset,
    Interaction,
    Item,
    User,
    behavior_text,
    load_ml100k,
    ml100k_default_path,
    to_datetime,
)
from eval._errors import DataFormatError, EvalError, NotFittedError, SplitError
from eval._interests import InterestShares, interest_prf, interest_shares, predicted_interests
from eval._itemfeatures import ItemFeatures, cached_vectors, catalogue_fingerprint, item_texts
from eval._lstm import LSTMConfig, LSTMPredictor
from eval._main import run_main
from eval._mainconfig import MODELS, MainConfig, MainResult, ShownUser
from eval._metrics import (
    METRICS,
    metrics_from_ranks,
    ranking_metrics,
    sample_negatives,
    sampled_rank_from_list,
    sampled_rank_from_scores,
    target_rank,
)
from eval._plots import plot_interest_timeline, plot_metrics
from eval._popularity import PopularityConfig, PopularityPredictor
from eval._protocol import (
    FullScorer,
    LLMTimed,
    Predictor,
    Ranking,
    RankRequest,
    StageAware,
    Tunable,
    top_k_excluding,
)
from eval._report import format_paired, format_table, print_table, results_markdown
from eval._results import (
    CandidateRecall,
    Comparison,
    EvalResult,
    EvalSummary,
    Latency,
    ModelReport,
    SampledReport,
    Trial,
    TuningResult,
)
from eval._runner import EvalConfig, run_evaluation, sample_users
from eval._sasrec import SASRecConfig, SASRecPredictor
from eval._search import tune_predictors, tuning_users
from eval._seqmodels import (
    RETRIEVER_MIX,
    RETRIEVER_PREFERENCE,
    SEQUENTIAL_MODELS,
    build_sequential,
    pick_retriever,
    pick_retrievers,
)
from eval._show import format_main
from eval._split import Split, Target, leave_one_out, temporal_split, without_last
from eval._stats import BootstrapCI, PairedTest, bootstrap_ci, paired_test
from eval._synthetic import SyntheticConfig, SyntheticTruth, UserTruth, make_synthetic
from eval._tide import SequentialMix, behavior_from_row, catalog_from_dataset, dataset_behaviors

__all__ = [
    "BEHAVIOR_COLUMNS",
    "METRICS",
    "MODELS",
    "RETRIEVER_MIX",
    "RETRIEVER_PREFERENCE",
    "SEQUENTIAL_MODELS",
    "SequentialMix",
    "BootstrapCI",
    "CandidateRecall",
    "Comparison",
    "DataFormatError",
    "Dataset",
    "EvalConfig",
    "EvalError",
    "EvalResult",
    "EvalSummary",
    "FullScorer",
    "Interaction",
    "InterestShares",
    "Item",
    "ItemFeatures",
    "LLMTimed",
    "LSTMConfig",
    "LSTMPredictor",
    "Latency",
    "MainConfig",
    "MainResult",
    "ModelReport",
    "NotFittedError",
    "PairedTest",
    "PopularityConfig",
    "PopularityPredictor",
    "Predictor",
    "RankRequest",
    "Ranking",
    "RejectedRow",
    "SASRecConfig",
    "SASRecPredictor",
    "SampledReport",
    "ShownUser",
    "Split",
    "SplitError",
    "StageAware",
    "SyntheticConfig",
    "SyntheticTruth",
    "Target",
    "Trial",
    "Tunable",
    "TuningResult",
    "User",
    "UserTruth",
    "behavior_from_row",
    "behavior_text",
    "bootstrap_ci",
    "catalog_from_dataset",
    "dataset_behaviors",
    "dataset_popularity",
    "format_main",
    "format_paired",
    "format_table",
    "interest_prf",
    "interest_shares",
    "leave_one_out",
    "load_behaviors_file",
    "load_catalog",
    "load_ml100k",
    "make_synthetic",
    "metrics_from_ranks",
    "ml100k_default_path",
    "paired_test",
    "parse_behavior",
    "plot_interest_timeline",
    "plot_metrics",
    "predicted_interests",
    "print_table",
    "ranking_metrics",
    "results_markdown",
    "run_evaluation",
    "run_main",
    "sample_negatives",
    "sample_users",
    "tune_predictors",
    "tuning_users",
    "sampled_rank_from_list",
    "sampled_rank_from_scores",
    "target_rank",
    "temporal_split",
    "without_last",
    "to_datetime",
    "top_k_excluding",
    "validate_rows",
    "auc_from_list",
    "auc_from_rank",
    "auc_from_scores",
    "per_user_auc",
    "cached_vectors",
    "catalogue_fingerprint",
    "item_texts",
    "build_sequential",
    "pick_retriever",
    "pick_retrievers",
]

from eval._branch import branch_from_manifest, fitted_branch  # noqa: E402
from eval._tune import (  # noqa: E402
    committed_item_head,
    forbidden_pairs,
    item_head_on_split,
    tune_items,
    tune_on_split,
    tune_validation,
    validate_item_head,
    validate_model,
    validation_examples,
    validation_report,
)

__all__ += [
    "branch_from_manifest",
    "fitted_branch",
    "forbidden_pairs",
    "committed_item_head",
    "item_head_on_split",
    "tune_items",
    "tune_on_split",
    "tune_validation",
    "validate_item_head",
    "validate_model",
    "validation_examples",
    "validation_report",
]
