"""Looking inside trained models: attention maps and rollout, classification reports."""
from .attention_maps import attention_rollout, collect_attention, save_attention_grid
from .classification import classification_report, evaluate_classifier, predict, save_classification_report

__all__ = ["attention_rollout", "collect_attention", "save_attention_grid", "classification_report",
           "evaluate_classifier", "predict", "save_classification_report"]
