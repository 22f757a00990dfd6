"""Hybrid image tokens: the feature map of a small CNN, one token per cell (the ViT paper's hybrid model,
Dosovitskiy et al. 2021, section 3.1; timm's ``HybridEmbed``).

The backbone is the project's VGG-style CNN (:class:`xformer.baselines.images.CNNClassifier`) without its
global pooling and classifier: one stage per width w_s,

    stage_s(x) = MaxPool2x2( ReLU(BN(Conv3x3(... ReLU(BN(Conv3x3(x))) ...))) )      (``convs_per_stage`` convs)

where only the first ``pool_stages`` stages pool (default: all). A 1x1 convolution projects each cell of
the last map to the model width, z_ij = W f_ij + b, and the cells in raster order (index = i * W' + j) are
the tokens. A 3x3 conv with padding 1 keeps the side; each pool halves it (floor), so an 8x8 image gives
a 4x4 grid after one pooling stage and 2x2 after two. Where a patch tokenizer gives the transformer
raw pixels, this gives it features with a CNN's locality and translation equivariance, learned
jointly with the transformer from scratch (BatchNorm in the stem, as in the CNN baseline).

Positions (``learned``, ``sincos`` or ``none``), the optional class token and ``Tokens.state`` are those
of the other image tokenizers. Differences from timm's ``HybridEmbed``: the backbone is built here (not
any timm model), and there is no pretrained backbone to load.
"""
from __future__ import annotations

from torch import nn

from ..batch import IMAGES
from ..core import CoreConfig
from ..errors import ConfigError
from ..registry import check_sizes, register_tokenizer
from ..tokens import Tokens
from .image import GridTokenizer, _pair, check_grid_tokens, check_switches


class ConvBlock(nn.Sequential):
    """``convs`` x (Conv3x3 (padding 1, no bias) - BatchNorm - ReLU), then MaxPool 2x2 when ``pool``."""

    def __init__(self, in_channels: int, out_channels: int, convs: int = 2, pool: bool = True):
        layers = []
        for i in range(convs):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


class HybridTokenizer(GridTokenizer):
    """(B, C, H, W) images -> Tokens (B, [1 +] H' * W', d): CNN stages, a 1x1 projection, cells as tokens.

    The backbone keeps PyTorch's default init (that of the CNN baseline) under ``model.core.init: gpt2`` too
    (``keeps_own_init``): N(0, 0.02) would replace the convolutions' weights.
    """

    keeps_own_init = ("backbone",)

    def __init__(self, dim: int, image_size: int | tuple[int, int] = 32, channels: int = 3,
                 widths: list[int] = (32,), convs_per_stage: int = 2, pool_stages: int | None = None,
                 positions: str = "none", class_token: bool = False, dropout: float = 0.0,
                 images_key: str = IMAGES):
        super().__init__()
        widths = [int(w) for w in widths]
        self.pool_stages = len(widths) if pool_stages is None else int(pool_stages)
        if not widths or not 0 <= self.pool_stages <= len(widths):
            raise ValueError(f"pool_stages must be between 0 and the {len(widths)} stages, got {pool_stages}")
        self.image_size, self.channels, self.images_key = _pair(image_size), channels, images_key
        c = [channels, *widths]
        self.backbone = nn.Sequential(*[ConvBlock(c[s], c[s + 1], convs_per_stage, pool=s < self.pool_stages)
                                        for s in range(len(widths))])
        self.proj = nn.Conv2d(widths[-1], dim, kernel_size=1)
        self.grid = self._grid_for(*self.image_size)
        self.init_cell_tokens(dim, positions, class_token, dropout)

    def _grid_for(self, h: int, w: int) -> tuple[int, int]:
        rows, cols = h >> self.pool_stages, w >> self.pool_stages  # each pooling stage: floor(side / 2)
        if min(rows, cols) < 1:
            raise ValueError(f"image size {h}x{w} is too small for {self.pool_stages} pooling stages "
                             f"(each halves the side); use larger images (data.args.image_size) or a smaller "
                             f"model.tokenizer.args.pool_stages")
        return rows, cols

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        images = self.checked_images(batch)
        self._grid_for(images.shape[-2], images.shape[-1])  # a one-line error for an image too small
        return self.cell_tokens(self.proj(self.backbone(images.to(self.proj.weight.dtype))))


@register_tokenizer("image_hybrid")
def image_hybrid_tokenizer(core: CoreConfig, image_size: int | list[int] = 32, channels: int = 3,
                           widths: list[int] = (32,), convs_per_stage: int = 2, pool_stages: int | None = None,
                           positions: str = "none", class_token: bool = False,
                           dropout: float = 0.0) -> HybridTokenizer:
    where = "model.tokenizer.args"
    if not isinstance(widths, (list, tuple)) or not widths:
        raise ConfigError(f"{where}.widths must be a non-empty list of channel counts, e.g. [32], got {widths!r}")
    check_sizes(where, image_size=image_size, channels=channels, widths=list(widths), convs_per_stage=convs_per_stage)
    check_sizes(where, minimum=0, pool_stages=pool_stages)
    check_switches(where, class_token=class_token)
    if pool_stages is not None and pool_stages > len(widths):
        raise ConfigError(f"{where}.pool_stages={pool_stages} is more than the {len(widths)} stages in widths")
    (h, w), pools = _pair(image_size), len(widths) if pool_stages is None else pool_stages
    if min(h, w) >> pools >= 1:  # else too small: the tokenizer's own error says so
        need = next(s for s in range(pools, pools + 64) if (h >> s) * (w >> s) <= 256)
        fix = (f"use pool_stages={need} (<= 256 tokens)" if need <= len(widths) else
               f"use widths with {need} stages, all pooling (e.g. {[32 * 2 ** min(s, 3) for s in range(need)]}; "
               "<= 256 tokens)")
        check_grid_tokens(h, w, (h >> pools, w >> pools), f"{pools} pooling stage(s) (pool_stages={pools})", fix)
    return HybridTokenizer(core.d_model, image_size, channels, list(widths), convs_per_stage, pool_stages,
                           positions, class_token, dropout)


__all__ = ["ConvBlock", "HybridTokenizer"]
