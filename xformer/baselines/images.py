"""Image classification baselines: a multi-layer perceptron and a small VGG-style CNN.

Each is an ``nn.Module`` with the forward contract of :class:`xformer.models.Model` with a
classification head: ``forward(batch) -> {"logits": (B, K), "loss", "loss_weight"}`` (the loss
only when the batch has ``labels``), reading ``images`` (B, C, H, W). The loss is the
:class:`~xformer.heads.classification.ClassificationHead`'s, cross-entropy with label smoothing eps:

    loss = -1/B sum_i sum_k q_ik log softmax(z_i)_k,   q_i = (1 - eps) onehot(y_i) + eps / K

where ``labels`` are class indices (B,) or class probabilities (B, K) (MixUp/CutMix), and
``loss_weight`` = B. So the trainer trains them like the ViT and ``evaluate_classifier`` scores
them unchanged. Build one by name:

    model = build_baseline("cnn", image_size=[8, 8], channels=1, n_classes=10, widths=[32, 64])

``image_size``, ``channels`` and ``n_classes`` are the arguments an image ``DataBundle.model_args``
provides (a recipe names one as ``model: {baseline: {name: cnn, args: {widths: [32, 64]}}}`` and
the data fills them in).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..batch import IMAGES, image_input
from ..core import Dropout
from ..heads.classification import classification_output
from ..registry import register_baseline
from ..tokenizers.image_hybrid import ConvBlock

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    size = tuple(int(s) for s in image_size)
    if len(size) != 2:
        raise ValueError(f"image_size must be an int or [height, width], got {list(image_size)}")
    return size


def _check(label_smoothing: float, n_classes: int, dropout: float) -> None:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _images(batch: dict, channels: int, size: tuple[int, int]) -> Tensor:
    x: Tensor = image_input(batch, IMAGES)
    if x.dim() != 4 or x.shape[1] != channels or tuple(x.shape[2:]) != size:
        raise ValueError(f"images must be (batch, {channels}, {size[0]}, {size[1]}), got {tuple(x.shape)}")
    return x


class MLPClassifier(nn.Module):
    """z = W_n Dropout(act(... act(W_1 flatten(x) + b_1) ...)) + b_n: flatten C*H*W pixels, hidden layers, logits.

    ``hidden_dims``: the widths of the hidden layers ([] gives multinomial logistic regression).
    """

    def __init__(self, image_size: int | Sequence[int], channels: int, n_classes: int,
                 hidden_dims: Sequence[int] = (256, 256), dropout: float = 0.1, activation: str = "gelu",
                 label_smoothing: float = 0.0):
        super().__init__()
        _check(label_smoothing, n_classes, dropout)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.size, self.channels, self.label_smoothing = _size(image_size), channels, label_smoothing
        layers, width = [], channels * self.size[0] * self.size[1]
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation](), Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(width, n_classes)
        self.n_classes = n_classes  # a label beyond them is refused before the loss (classes_of)

    def forward(self, batch: dict) -> dict:
        x = _images(batch, self.channels, self.size)
        return classification_output(self.fc(self.body(x.flatten(1))), batch, self.label_smoothing)


class CNNClassifier(nn.Module):
    """A small VGG-style net: blocks of [Conv3x3-BN-ReLU] x ``convs_per_block`` - MaxPool2, one per width,
    then global average pooling, dropout and a linear classifier.

        h = GAP(block_n(... block_1(x)))  (B, widths[-1]),   z = W Dropout(h) + b

    A block pools only while the feature map is at least 2x2, so 8x8 digits and 32x32 RGB images both
    work with the same ``widths`` (e.g. [32, 64]: 8x8 -> 4x4 -> 2x2, 32x32 -> 16x16 -> 8x8).
    """

    def __init__(self, image_size: int | Sequence[int], channels: int, n_classes: int,
                 widths: Sequence[int] = (32, 64), convs_per_block: int = 2, dropout: float = 0.1,
                 label_smoothing: float = 0.0):
        super().__init__()
        _check(label_smoothing, n_classes, dropout)
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty list of positive channel counts, got {list(widths)}")
        if convs_per_block < 1:
            raise ValueError(f"convs_per_block must be >= 1, got {convs_per_block}")
        self.size, self.channels, self.label_smoothing = _size(image_size), channels, label_smoothing
        blocks, h, w, c = [], *self.size, channels
        for width in widths:
            pool = min(h, w) >= 2
            blocks.append(ConvBlock(c, width, convs_per_block, pool))
            h, w, c = (h // 2, w // 2, width) if pool else (h, w, width)
        self.features = nn.Sequential(*blocks)
        self.drop = Dropout(dropout)
        self.fc = nn.Linear(c, n_classes)
        self.n_classes = n_classes  # a label beyond them is refused before the loss (classes_of)

    def forward(self, batch: dict) -> dict:
        x = _images(batch, self.channels, self.size)
        h = self.features(x).mean(dim=(2, 3))  # global average pooling
        return classification_output(self.fc(self.drop(h)), batch, self.label_smoothing)


register_baseline("mlp")(MLPClassifier)
register_baseline("cnn")(CNNClassifier)

__all__ = ["MLPClassifier", "CNNClassifier", "ConvBlock", "classification_output"]
