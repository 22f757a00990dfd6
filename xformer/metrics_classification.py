"""Classification metrics from a model and batches: accuracy, per-class accuracy, confusion matrix
(the ``evaluate`` and ``report`` of the classification datasets).

    accuracy = (1/N) sum_i [argmax z_i = y_i]                  (top-1)
    top5_accuracy = (1/N) sum_i [y_i in the 5 largest z_i]     (only with more than 5 classes)
    C[t, p] = #{i : y_i = t, argmax z_i = p}   (rows: true class, columns: predicted)
    per-class accuracy (recall) of class k = C[k, k] / sum_p C[k, p]
    balanced_accuracy = mean of the per-class accuracies of the classes present in y (sklearn's)
    macro_f1 = mean over the classes present in y or the predictions of F1_k = 2 TP / (2 TP + FP + FN)
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .batch import LABELS


TOP_K = 5


@torch.no_grad()
def _predict(model: nn.Module, batches: Iterable[dict], k: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """(true labels (N,), the k highest-scoring classes (N, min(k, K)) best first, K) over all batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    y_true, y_top, n_classes = [], [], 0
    try:
        for batch in batches:
            batch = {key: v.to(device) if isinstance(v, torch.Tensor) else v for key, v in batch.items()}
            labels = batch.pop(LABELS)
            logits = model(batch)["logits"]
            y_true.append((labels.argmax(-1) if labels.is_floating_point() else labels).cpu())
            n_classes = logits.shape[-1]
            y_top.append(logits.topk(min(k, n_classes), dim=-1).indices.cpu())
    finally:
        model.train(was_training)
    return torch.cat(y_true).numpy(), torch.cat(y_top).numpy(), n_classes


def predict(model: nn.Module, batches: Iterable[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, predicted labels) over all batches; the model runs in eval mode on its own device."""
    y_true, y_top, _ = _predict(model, batches, 1)
    return y_true, y_top[:, 0]


def _top_scores(y_true: np.ndarray, y_top: np.ndarray, n_classes: int) -> dict[str, float]:
    metrics = {"accuracy": float((y_true == y_top[:, 0]).mean())}
    if n_classes > TOP_K:
        metrics["top5_accuracy"] = float((y_top == y_true[:, None]).any(axis=1).mean())
    return metrics


def evaluate_classifier(model: nn.Module, batches: Iterable[dict]) -> dict[str, float]:
    """The DataBundle.evaluate of classification datasets: {"accuracy": ...} (top-1), plus
    {"top5_accuracy": ...} when the model has more than 5 classes (with 5 or fewer it would be 1)."""
    return _top_scores(*_predict(model, batches, TOP_K))


def evaluate_imbalanced(model: nn.Module, batches: Iterable[dict]) -> dict[str, float]:
    """:func:`evaluate_classifier`'s metrics and :func:`imbalance_metrics`: for data whose classes are seldom of
    one size (the UCR/UEA archives'), where a majority class alone earns a high accuracy."""
    y_true, y_top, n_classes = _predict(model, batches, TOP_K)
    return {**_top_scores(y_true, y_top, n_classes), **imbalance_metrics(y_true, y_top[:, 0])}


def macro_f1(y_true, y_pred) -> float:
    """Mean over the labels present in y_true or y_pred of F1_k = 2 TP / (2 TP + FP + FN) (arrays or tensors)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for k in np.union1d(y_true, y_pred):
        tp = ((y_pred == k) & (y_true == k)).sum()
        scores.append(2 * tp / (2 * tp + ((y_pred == k) != (y_true == k)).sum()))  # the second sum: FP + FN
    return float(np.mean(scores)) if scores else 0.0


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean over the labels present in y_true of the fraction of their examples predicted right."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recalls = [(y_pred[y_true == k] == k).mean() for k in np.unique(y_true)]
    return float(np.mean(recalls)) if recalls else 0.0


def imbalance_metrics(y_true, y_pred) -> dict[str, float]:
    """{"balanced_accuracy", "macro_f1"}: what accuracy alone hides when one class dominates."""
    return {"balanced_accuracy": balanced_accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred)}


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                          class_names: Sequence[str] | None = None) -> dict:
    """Accuracy, per-class accuracy, support (examples per true class) and the confusion matrix (sklearn),
    as plain JSON-able values; accuracy = sum_k support_k * per_class_k / sum_k support_k."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
    support = cm.sum(axis=1)
    per_class = np.divide(np.diag(cm), support, out=np.full(n_classes, np.nan), where=support > 0)
    names = list(class_names) if class_names is not None else [str(k) for k in range(n_classes)]
    return {
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        **imbalance_metrics(y_true, y_pred),
        "per_class_accuracy": {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, per_class)},
        "support": {n: int(s) for n, s in zip(names, support)},  # true examples of each class
        "confusion_matrix": cm.tolist(),
        "class_names": names,
    }


def plot_confusion_matrix(report: dict, path: str | Path) -> Path:
    """Write the confusion matrix of a :func:`classification_report` as a PNG."""
    from matplotlib.figure import Figure  # not pyplot: the caller's backend and open figures stay as they are

    cm = np.asarray(report["confusion_matrix"])
    names = report["class_names"]
    k = len(names)
    fig = Figure(figsize=(1.0 + 0.45 * k, 1.0 + 0.45 * k))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title=f"accuracy {report['accuracy']:.4f}")
    for label in ax.get_xticklabels():
        label.set_rotation(90)
    if k <= 20:
        for t in range(k):
            for p in range(k):
                ax.text(p, t, cm[t, p], ha="center", va="center", fontsize=7,
                        color="white" if cm[t, p] > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def save_classification_report(run_dir: str | Path, model: nn.Module, batches: Iterable[dict], n_classes: int,
                               class_names: Sequence[str] | None = None, split: str = "test") -> dict:
    """Write ``{split}_classification.json`` and ``{split}_confusion_matrix.png`` into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    report = classification_report(*predict(model, batches), n_classes, class_names)
    (run_dir / f"{split}_classification.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    plot_confusion_matrix(report, run_dir / f"{split}_confusion_matrix.png")
    return report


def top_classes(logits: torch.Tensor, names: Sequence[str], top_k: int) -> list[dict]:
    """Per row of ``logits``: {"class", "probability", "top_k": [(class, probability), ...]}, p = softmax(z)."""
    probs = logits.float().softmax(-1).cpu()
    values, indices = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    rows = []
    for p, i in zip(values.tolist(), indices.tolist()):
        top = [(names[c] if c < len(names) else str(c), prob) for c, prob in zip(i, p)]
        rows.append({"class": top[0][0], "probability": top[0][1], "top_k": top})
    return rows


__all__ = ["predict", "top_classes", "evaluate_classifier", "evaluate_imbalanced", "macro_f1", "balanced_accuracy",
           "imbalance_metrics", "classification_report", "plot_confusion_matrix", "save_classification_report"]
