"""Looking inside trained models: attention maps and rollout; classification reports (from
:mod:`xformer.metrics_classification`, re-exported)."""
from ..metrics_classification import classification_report, evaluate_classifier, predict, save_classification_report
from .attention_maps import attention_rollout, capture_attention, collect_attention, save_attention_grid
from .attention_stats import attention_distance, attention_entropy, grid_coords, line_coords

__all__ = ["attention_entropy", "attention_distance", "grid_coords", "line_coords", "attention_rollout",
           "capture_attention", "collect_attention", "save_attention_grid", "classification_report",
           "evaluate_classifier", "predict", "save_classification_report"]
