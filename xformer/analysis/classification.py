"""Moved to :mod:`xformer.metrics_classification` (the datasets' evaluate and report hooks use it);
re-exported here so that ``from xformer.analysis.classification import ...`` keeps working."""
from ..metrics_classification import (classification_report, evaluate_classifier, plot_confusion_matrix, predict,
                                      save_classification_report)

__all__ = ["predict", "evaluate_classifier", "classification_report", "plot_confusion_matrix",
           "save_classification_report"]
