"""Looking inside trained models: attention maps and rollout; classification reports (from
:mod:`xformer.metrics_classification`, re-exported)."""
from ..metrics_classification import classification_report, evaluate_classifier, predict, save_classification_report
from .attention_maps import attention_rollout, capture_attention, collect_attention, save_attention_grid

__all__ = ["attention_rollout", "capture_attention", "collect_attention", "save_attention_grid", "classification_report",
           "evaluate_classifier", "predict", "save_classification_report"]
