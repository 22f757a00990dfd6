"""Convolutional image tokens: the CCT tokenizer (Hassani et al. 2021) / early-convolution stem (Xiao et al. 2021).

Instead of cutting the image into patches, ``n_conv_layers`` blocks

    Conv2d(c_{l-1} -> c_l, kernel k, stride s, padding p) -> ReLU -> MaxPool2d(pool_kernel, pool_stride, pool_padding)

turn (B, C, H, W) into a feature map (B, d, H', W'); its cells, in raster order (index = i * W' + j),
are the tokens. The widths are c_0 = C (the image channels), c_1 .. c_{n-1} = ``conv_channels``
(default 64 each, CCT's ``in_planes``) and c_n = d (d_model). Every conv and every pool maps a
side length by

    H_out = floor((H + 2 p - k) / s) + 1

so the grid is that equation applied twice per block (:func:`conv_grid`); the tests check it
against a dry run. This is SHI-Labs/Compact-Transformers ``src/utils/tokenizer.py`` ``Tokenizer``
(conv without bias, ReLU, max pool, ``Flatten(2, 3).transpose(-2, -1)``), e.g. CCT-7/3x1 is
``n_conv_layers=1, kernel_size=3, stride=1, padding=1, pool_kernel=3, pool_stride=2, pool_padding=1``.

There is no class token by default: CCT reads the tokens with sequence pooling, which is
``head.args.pool=attention`` of the classification head (one learned query attending over the
tokens). Positions are optional: ``learned`` (one vector per grid cell, sized from the computed
grid and resampled bicubically for other image sizes), ``sincos`` (fixed 2-D table) or ``none``
(CCT's convolutions already carry position through zero padding). There is no padding:
``Tokens.padding_mask`` is None; ``Tokens.state`` holds ``grid``, ``prefix_tokens`` (0, or 1 with a
class token) and ``class_token``.
"""
from __future__ import annotations

from torch import nn

from ..batch import IMAGES
from ..core import CoreConfig
from ..config import ConfigError
from ..registry import check_sizes, register_tokenizer
from ..tokens import Tokens
from .image import GridTokenizer, _pair, check_grid_tokens, check_switches


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """H_out = floor((H + 2p - k) / s) + 1 (Conv2d and MaxPool2d, dilation 1, floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_grid(h: int, w: int, n_layers: int, kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int], pool: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None
              ) -> list[tuple[int, int]]:
    """The (rows, cols) after each conv and each pool, in order; the last is the token grid."""
    sizes, size = [], (h, w)
    for _ in range(n_layers):
        size = tuple(conv_out(size[i], kernel[i], stride[i], padding[i]) for i in range(2))
        sizes.append(size)
        if pool is not None:
            size = tuple(conv_out(size[i], pool[0][i], pool[1][i], pool[2][i]) for i in range(2))
            sizes.append(size)
    return sizes


class ConvTokenizer(GridTokenizer):
    """(B, C, H, W) images -> Tokens (B, [1 +] H' * W', d) from a conv-ReLU-maxpool stem.

    The stem's convolutions are Kaiming-initialised, W ~ N(0, 2 / fan_in), fan_in = c_{l-1} k_h k_w (CCT's
    init: the ReLU after each conv halves the variance it passes on); ``model.core.init: gpt2`` leaves
    them so (``keeps_own_init``, read by ``xformer.models.build_model``) rather than drawing N(0, 0.02).
    """

    keeps_own_init = ("conv_layers",)

    def __init__(self, dim: int, image_size: int | tuple[int, int] = 32, channels: int = 3, n_conv_layers: int = 1,
                 conv_channels: list[int] | None = None, kernel_size: int = 3, stride: int = 1, padding: int = 1,
                 max_pool: bool = True, pool_kernel: int = 3, pool_stride: int = 2, pool_padding: int = 1,
                 conv_bias: bool = False, positions: str = "learned", class_token: bool = False,
                 dropout: float = 0.0, images_key: str = IMAGES):
        super().__init__()
        widths = list(conv_channels) if conv_channels is not None else [64] * (n_conv_layers - 1)
        if len(widths) == n_conv_layers and widths and widths[-1] == dim:
            widths = widths[:-1]  # the last width given as d_model itself
        if len(widths) != n_conv_layers - 1:
            raise ValueError(f"conv_channels must list the {n_conv_layers - 1} widths between the convolutions "
                             f"(the last conv has d_model={dim} channels), got {list(conv_channels)}")
        self.image_size, self.channels, self.images_key = _pair(image_size), channels, images_key
        self.kernel, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        self.pool = (_pair(pool_kernel), _pair(pool_stride), _pair(pool_padding)) if max_pool else None
        if self.pool is not None and any(2 * p > k for p, k in zip(self.pool[2], self.pool[0])):
            raise ValueError(f"pool_padding={pool_padding} must be at most half of pool_kernel={pool_kernel}")
        self.n_conv_layers = n_conv_layers
        c = [channels, *widths, dim]
        self.conv_layers = nn.Sequential(*[nn.Sequential(
            nn.Conv2d(c[i], c[i + 1], self.kernel, self.stride, self.padding, bias=conv_bias),
            nn.ReLU(),
            nn.MaxPool2d(self.pool[0], self.pool[1], self.pool[2]) if self.pool is not None else nn.Identity(),
        ) for i in range(n_conv_layers)])
        self.grid = self._grid_for(*self.image_size)
        self.init_cell_tokens(dim, positions, class_token, dropout)
        for m in self.modules():  # CCT's init of the stem
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def _grid_for(self, h: int, w: int) -> tuple[int, int]:
        sizes = conv_grid(h, w, self.n_conv_layers, self.kernel, self.stride, self.padding, self.pool)
        if min(min(s) for s in sizes) < 1:
            raise ValueError(f"image size {h}x{w} is too small for {self.n_conv_layers} conv/pool layers "
                             f"(sizes {' -> '.join(f'{a}x{b}' for a, b in sizes)}); use larger images "
                             f"(data.args.image_size) or fewer layers, a smaller stride or max_pool=false")
        return sizes[-1]

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        images = self.checked_images(batch)
        self._grid_for(images.shape[-2], images.shape[-1])  # a one-line error for an image too small
        return self.cell_tokens(self.conv_layers(images.to(self.conv_layers[0][0].weight.dtype)))


def _check_conv_tokens(size, n_layers, kernel, stride, padding, pool) -> None:
    """The token-count limit of the patch tokenizer (``MAX_PATCH_TOKENS``), naming the number of conv/pool
    layers that gives at most 256 tokens with the same kernel, stride and pooling, when one does."""
    sizes = conv_grid(*size, n_layers, kernel, stride, padding, pool)
    if min(min(s) for s in sizes) < 1:
        return  # too small: the tokenizer's own error says so
    more = next((k for k in range(n_layers + 1, n_layers + 9)
                 if (grid := conv_grid(*size, k, kernel, stride, padding, pool)[-1])[0] * grid[1] <= 256
                 and min(grid) >= 1), None)
    fix = (f"use n_conv_layers={more} (<= 256 tokens; conv_channels then lists {more - 1} widths)" if more else
           "use a larger stride or pool_stride")
    check_grid_tokens(*size, sizes[-1], f"{n_layers} conv/pool layer(s) (n_conv_layers={n_layers})", fix)


@register_tokenizer("image_conv")
def image_conv_tokenizer(core: CoreConfig, image_size: int | list[int] = 32, channels: int = 3,
                         n_conv_layers: int = 1, conv_channels: list[int] | None = None, kernel_size: int = 3,
                         stride: int = 1, padding: int = 1, max_pool: bool = True, pool_kernel: int = 3,
                         pool_stride: int = 2, pool_padding: int = 1, conv_bias: bool = False,
                         positions: str = "learned", class_token: bool = False, dropout: float = 0.0) -> ConvTokenizer:
    where = "model.tokenizer.args"
    check_sizes(where, image_size=image_size, channels=channels, n_conv_layers=n_conv_layers,
                conv_channels=conv_channels, kernel_size=kernel_size, stride=stride, pool_kernel=pool_kernel,
                pool_stride=pool_stride)
    check_sizes(where, minimum=0, padding=padding, pool_padding=pool_padding)
    check_switches(where, max_pool=max_pool, conv_bias=conv_bias, class_token=class_token)
    if conv_channels is not None and not isinstance(conv_channels, (list, tuple)):
        raise ConfigError(f"{where}.conv_channels must be a list of widths, got {conv_channels!r}")
    _check_conv_tokens(_pair(image_size), n_conv_layers, _pair(kernel_size), _pair(stride), _pair(padding),
                       (_pair(pool_kernel), _pair(pool_stride), _pair(pool_padding)) if max_pool else None)
    return ConvTokenizer(core.d_model, image_size, channels, n_conv_layers, conv_channels, kernel_size, stride,
                         padding, max_pool, pool_kernel, pool_stride, pool_padding, conv_bias, positions,
                         class_token, dropout)


__all__ = ["ConvTokenizer", "conv_grid", "conv_out"]
