"""Image tokens: ViT patch embedding (Dosovitskiy et al. 2021), prefix tokens and 2-D positions.

An image (B, C, H, W) is cut into non-overlapping p x p patches; each patch is
flattened and projected to d. A Conv2d with kernel = stride = p computes exactly
that linear map on every patch at once:

    z_{i,j} = W vec(x[:, i p:(i+1) p, j p:(j+1) p]) + b,      i < H/p, j < W/p

The (H/p) x (W/p) grid is listed in raster order (index = i * W/p + j), the layout
of timm's ``PatchEmbed``. Prefix tokens go in front: a learned [CLS] token
(read by CLS pooling) and ``register_tokens`` learned registers (Darcet et al.
2024), so the sequence is [CLS, reg_1 .. reg_R, patch_1 .. patch_HW].

Positions are added: learned (one vector per grid cell, and optionally per
prefix token as in the original ViT/timm layout), fixed 2-D sine-cosine (MAE,
DeiT-III; see :func:`sincos_2d_table`), or none. A learned grid
trained at one image size is resampled bicubically when an image of another
size comes in, or when a checkpoint of another size is loaded.

Shifted Patch Tokenization (``shifted_patches``; Lee et al. 2021, "Vision Transformer for
Small-Size Datasets") widens what each patch sees: the image and its four diagonal shifts by
half a patch (zero filled) are stacked on channels, then each patch of the 5C-channel stack is
flattened, LayerNorm'ed and projected:

    S(x) = [x; shift(x, -p/2, -p/2); shift(x, +p/2, -p/2); shift(x, -p/2, +p/2); shift(x, +p/2, +p/2)]
    z_{i,j} = W LN(vec(S(x)[:, i p:(i+1) p, j p:(j+1) p])) + b       (W: d x 5 C p^2, the conv's weight)

``proj`` keeps its name (a Conv2d of 5C input channels whose weight is W) and the norm is
``spt_norm``; with the option off neither changes, so the state dict is that of the plain ViT.
LN's eps is the authors' (``nn.LayerNorm(patch_dim)``: 1e-5, aanna0701/SPT_LSA_ViT models/SPT.py), not
``core.norm_eps``: a ViT recipe's 1e-6 (timm's, for the blocks) moves sparse patches, such as the digits'
few inked pixels among shifted-in zeros, by about 1%.

``Tokens.state`` (a ``TokenState``) carries ``prefix_tokens`` (how many tokens precede the
patches), ``class_token`` (whether token 0 is [CLS]) and ``grid`` (rows, cols), so that a
head can pool and an analysis can draw maps without knowing the tokenizer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import IMAGES, image_input
from ..core import CoreConfig, Dropout, make_norm, unless_idle
from ..errors import ConfigError
from ..registry import check_sizes, register_tokenizer
from ..tokens import Tokens, TokenState

POSITIONS = ("learned", "sincos", "none")
SPT_NORM_EPS = 1e-5  # the reference's nn.LayerNorm default, whatever core.norm_eps the blocks use


def _pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def check_switches(prefix: str, **switches) -> None:
    """Each on/off argument must be true or false (1 / 0 pass as well): a word such as ``maybe`` would
    otherwise be taken as true, or fail deep inside the tokenizer."""
    for key, value in switches.items():
        if not (isinstance(value, (bool, int)) and value in (True, False)):
            raise ConfigError(f"{prefix}.{key} must be true or false, got {value!r}")


def sincos_2d_table(height: int, width: int, dim: int, base: float = 10000.0) -> Tensor:
    """2-D sine-cosine encodings for an image grid, shape (H*W, dim), in timm's layout.

    With w_k = 1 / base^(k / (dim/4)), k = 0 .. dim/4 - 1, the vector of the
    patch at row y, column x is [sin(y w), sin(x w), cos(y w), cos(x w)];
    patches are listed in raster order (index = y * W + x).
    """
    if dim % 4:
        raise ValueError(f"2-D sine-cosine positions need a dimension divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / base ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    out_y = y.reshape(-1, 1) * omega
    out_x = x.reshape(-1, 1) * omega
    return torch.cat([out_y.sin(), out_x.sin(), out_y.cos(), out_x.cos()], dim=1).float()


def shift_image(x: Tensor, dy: int, dx: int) -> Tensor:
    """(..., H, W) moved down by ``dy`` and right by ``dx`` pixels (negative: up / left), zeros filled in."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    return padded[..., max(-dy, 0):max(-dy, 0) + h, max(-dx, 0):max(-dx, 0) + w]


def shifted_stack(x: Tensor, sy: int, sx: int) -> Tensor:
    """(B, C, H, W) -> (B, 5C, H, W): the image and its four diagonal shifts (SPT, Lee et al. 2021)."""
    shifts = [shift_image(x, dy, dx) for dy, dx in ((-sy, -sx), (-sy, sx), (sy, -sx), (sy, sx))]
    return torch.cat([x, *shifts], dim=1)


def interpolate_grid_positions(table: Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> Tensor:
    """Bicubically resample a learned (H*W, d) grid of positions to a new grid size, as timm's
    ``resample_abs_pos_embed``: antialiased, so that a grid that shrinks averages its cells rather than
    sampling every other one (PyTorch's antialiased bicubic, a = -0.5, is PIL's kernel)."""
    if tuple(old_grid) == tuple(new_grid):
        return table
    d = table.shape[-1]
    grid = table.reshape(1, old_grid[0], old_grid[1], d).permute(0, 3, 1, 2)
    grid = nn.functional.interpolate(grid.float(), size=new_grid, mode="bicubic", align_corners=False,
                                     antialias=True)
    return grid.permute(0, 2, 3, 1).reshape(new_grid[0] * new_grid[1], d).to(table.dtype)


class GridTokenizer(nn.Module):
    """What the image tokenizers share: the check of the images, the positions of a grid of tokens and the
    token state. A subclass sets ``grid`` (at ``image_size``), ``dim``, ``positions`` with ``pos_grid``
    (learned) or the ``sincos`` buffer, ``n_prefix``, ``cls_token``, ``channels``, ``images_key``, and
    defines ``_grid_for(h, w)``."""

    @property
    def token_state(self) -> TokenState:
        """What the tokens are at ``image_size`` (a head's factory reads it)."""
        return TokenState(prefix_tokens=self.n_prefix, class_token=self.cls_token is not None, grid=self.grid,
                          n_tokens=self.n_prefix + self.grid[0] * self.grid[1])

    def grid_positions(self, grid: tuple[int, int]) -> Tensor | None:
        """The (rows * cols, d) positions of the grid tokens for a grid of this size."""
        if self.positions == "learned":
            return interpolate_grid_positions(self.pos_grid, self.grid, grid)
        if self.positions == "sincos":
            if tuple(grid) == self.grid:
                return self.sincos
            return sincos_2d_table(*grid, self.dim).to(self.sincos.device)
        return None

    def init_cell_tokens(self, dim: int, positions: str, class_token: bool, dropout: float) -> None:
        """For a tokenizer whose tokens are the cells of a feature map (``image_conv``, ``image_hybrid``), after
        ``grid`` is set: the optional class token, the positions of the grid and the token dropout."""
        if positions not in POSITIONS:
            raise ValueError(f"unknown positions {positions!r}; choose one of {', '.join(POSITIONS)}")
        self.dim, self.positions = dim, positions
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02) if class_token else None
        self.n_prefix = int(class_token)
        self.pos_grid = None
        if positions == "learned":
            self.pos_grid = nn.Parameter(torch.randn(self.grid[0] * self.grid[1], dim) * 0.02)
        elif positions == "sincos":
            self.register_buffer("sincos", sincos_2d_table(*self.grid, dim), persistent=False)
        self.drop = Dropout(dropout)

    def cell_tokens(self, feature_map: Tensor) -> Tokens:
        """(B, d, H', W') -> Tokens (B, [1 +] H' W', d): the cells in raster order (index = i * W' + j) plus their
        positions, the class token in front, dropout; no padding."""
        grid = tuple(feature_map.shape[-2:])
        x = feature_map.flatten(2).transpose(1, 2)
        pos = self.grid_positions(grid)
        if pos is not None:
            x = x + pos
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        state = TokenState(prefix_tokens=self.n_prefix, class_token=self.cls_token is not None, grid=grid)
        return Tokens(self.drop(x), None, state=state)

    def checked_images(self, batch: dict) -> Tensor:
        """batch[images_key], after checking it is (B, C, H, W) with this tokenizer's channels."""
        images: Tensor = image_input(batch, self.images_key)
        if images.dim() != 4:
            raise ValueError(f"batch['{self.images_key}'] must be (B, C, H, W), got shape {tuple(images.shape)}")
        if images.shape[1] != self.channels:
            raise ValueError(f"images have {images.shape[1]} channels but the tokenizer expects {self.channels}; "
                             f"set tokenizer.args.channels={images.shape[1]}")
        return images


class PatchEmbedding(GridTokenizer):
    """(B, C, H, W) images -> Tokens of shape (B, prefix + H/p * W/p, d).

    Batch key ``images`` (B, C, H, W) float. ``image_size`` is the size the
    learned positions are laid out for; other sizes divisible by the patch size
    are accepted and get resampled (learned) or recomputed (sincos) positions.
    """

    def __init__(self, dim: int, image_size: int | tuple[int, int] = 224, patch_size: int | tuple[int, int] = 16,
                 channels: int = 3, class_token: bool = True, register_tokens: int = 0,
                 positions: str = "learned", prefix_positions: bool = True, pre_norm: bool = False,
                 norm_eps: float = 1e-5, dropout: float = 0.0, images_key: str = IMAGES,
                 shifted_patches: bool = False):
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"unknown positions {positions!r}; choose one of {', '.join(POSITIONS)}")
        self.image_size, self.patch_size = _pair(image_size), _pair(patch_size)
        self.grid = self._grid_for(*self.image_size)
        self.channels, self.images_key, self.positions, self.dim = channels, images_key, positions, dim
        if shifted_patches and min(self.patch_size) < 2:
            raise ValueError("shifted_patches shifts by half a patch and needs patch_size >= 2")
        stacked = 5 * channels if shifted_patches else channels
        self.proj = nn.Conv2d(stacked, dim, kernel_size=self.patch_size, stride=self.patch_size)
        if shifted_patches:  # registered only when on: the plain tokenizer's state dict stays as it was
            self.spt_norm = make_norm("layernorm", stacked * self.patch_size[0] * self.patch_size[1], SPT_NORM_EPS)
        self.shifted_patches = shifted_patches
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02) if class_token else None
        self.reg_tokens = nn.Parameter(torch.randn(1, register_tokens, dim) * 0.02) if register_tokens else None
        self.n_prefix = int(class_token) + register_tokens
        # learned: pos_grid (HW, d) and, with prefix_positions, pos_prefix (prefix, d) (timm's embed_class layout)
        self.pos_grid = self.pos_prefix = None
        n_cells = self.grid[0] * self.grid[1]
        if positions == "learned":
            self.pos_grid = nn.Parameter(torch.randn(n_cells, dim) * 0.02)
            if prefix_positions and self.n_prefix:
                self.pos_prefix = nn.Parameter(torch.randn(self.n_prefix, dim) * 0.02)
        elif positions == "sincos":
            self.register_buffer("sincos", sincos_2d_table(*self.grid, dim), persistent=False)
        self.norm_pre = make_norm("layernorm", dim, norm_eps) if pre_norm else nn.Identity()
        self.drop = Dropout(dropout)
        self._register_load_state_dict_pre_hook(self._resample_checkpoint_positions)

    def _grid_for(self, h: int, w: int) -> tuple[int, int]:
        ph, pw = self.patch_size
        if h % ph or w % pw:
            fit = f"{h // ph * ph}x{w // pw * pw}"
            raise ValueError(f"image size {h}x{w} is not divisible by the patch size {ph}x{pw}; "
                             f"resize or crop the images to a multiple of it (e.g. {fit}) or change patch_size")
        return h // ph, w // pw

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        images = self.checked_images(batch)
        grid = self._grid_for(images.shape[-2], images.shape[-1])
        images = images.to(self.proj.weight.dtype)
        if self.shifted_patches:
            stack = shifted_stack(images, self.patch_size[0] // 2, self.patch_size[1] // 2)
            patches = F.unfold(stack, self.patch_size, stride=self.patch_size).transpose(1, 2)  # (B, HW, 5C p^2)
            x = F.linear(self.spt_norm(patches), self.proj.weight.flatten(1), self.proj.bias)
        else:
            x = self.proj(images).flatten(2).transpose(1, 2)  # (B, HW, d)
        pos = self.grid_positions(grid)
        if pos is not None:
            x = x + pos
        prefix = [t for t in (self.cls_token, self.reg_tokens) if t is not None]
        if prefix:
            # (1, P, d) positioned once, then expanded: no copy of a lone class token, no per-image add
            prefix = prefix[0] if len(prefix) == 1 else torch.cat(prefix, dim=1)
            if self.pos_prefix is not None:
                prefix = prefix + self.pos_prefix
            x = torch.cat([prefix.expand(x.shape[0], -1, -1), x], dim=1)
        x = unless_idle(self.drop, unless_idle(self.norm_pre, x))
        state = TokenState(prefix_tokens=self.n_prefix, class_token=self.cls_token is not None, grid=grid)
        return Tokens(x, None, state=state)

    def _resample_checkpoint_positions(self, state_dict, prefix, *args, **kwargs):
        """Loading a checkpoint trained at another image size: resample its learned grid to ours."""
        key = prefix + "pos_grid"
        if self.pos_grid is None or key not in state_dict:
            return
        table = state_dict[key]
        if table.shape[0] != self.pos_grid.shape[0]:
            side = int(round(table.shape[0] ** 0.5))
            if side * side != table.shape[0]:
                raise ValueError(f"cannot resample a {table.shape[0]}-cell position grid that is not square; "
                                 f"load it into a tokenizer with the image size it was trained on")
            state_dict[key] = interpolate_grid_positions(table, (side, side), self.grid)


MAX_PATCH_TOKENS = 4096  # tokens per image; attention costs N^2 per head and layer (4,096^2 = 16.8M entries)


def check_grid_tokens(h: int, w: int, grid: tuple[int, int], what: str, fix: str,
                      limit: int = MAX_PATCH_TOKENS) -> None:
    """Refuse, in one line, a tokenizer whose ``grid`` of cells (one token each) at image size h x w is over
    ``limit`` tokens (``image_conv``, ``image_hybrid``); ``what`` names its setting, ``fix`` the change."""
    n = grid[0] * grid[1]
    if n > limit:
        raise ConfigError(f"model.tokenizer.args: image size {h}x{w} with {what} makes {n} tokens per image "
                          f"({grid[0]}x{grid[1]}), over the limit of {limit}; {fix} or a smaller data.args.image_size")


def check_token_count(image_size, patch_size, limit: int = MAX_PATCH_TOKENS) -> None:
    """Refuse, in one line, an image size / patch size that cuts an image into more than ``limit`` patches,
    naming the square patch size that would give at most 256 (e.g. 224x224 with patch 2: 12,544 tokens): the
    smallest that divides both sides (the patches must tile the image), else the smallest that fits, with the
    image size it tiles (97x61: patch_size=5 with data.args.image_size=[95, 60])."""
    (h, w), (ph, pw) = _pair(image_size), _pair(patch_size)
    n = (h // ph) * (w // pw)
    if n > limit:
        sizes = [q for q in range(1, max(h, w) + 1) if (h // q) * (w // q) <= 256]
        fit = next((q for q in sizes if h % q == 0 and w % q == 0), None)
        q = sizes[0]
        use = f"patch_size={fit} (<= 256 tokens)" if fit is not None else \
            f"patch_size={q} with data.args.image_size=[{h // q * q}, {w // q * q}] (<= 256 tokens; no patch size " \
            f"tiles {h}x{w})"
        raise ConfigError(f"model.tokenizer.args: image size {h}x{w} with patch size {ph}x{pw} makes {n} tokens per "
                          f"image, over the limit of {limit}; use {use} or a smaller data.args.image_size")


@register_tokenizer("image_patches")
def image_patches_tokenizer(core: CoreConfig, image_size: int | list[int] = 224, patch_size: int | list[int] = 16,
                            channels: int = 3, class_token: bool = True, register_tokens: int = 0,
                            positions: str = "learned", prefix_positions: bool = True, pre_norm: bool = False,
                            dropout: float = 0.0, shifted_patches: bool = False) -> PatchEmbedding:
    check_sizes("model.tokenizer.args", image_size=image_size, patch_size=patch_size, channels=channels)
    check_sizes("model.tokenizer.args", minimum=0, register_tokens=register_tokens)
    check_switches("model.tokenizer.args", class_token=class_token, prefix_positions=prefix_positions,
                   pre_norm=pre_norm, shifted_patches=shifted_patches)
    check_token_count(image_size, patch_size)
    return PatchEmbedding(core.d_model, image_size, patch_size, channels, class_token, register_tokens,
                          positions, prefix_positions, pre_norm, core.norm_eps, dropout,
                          shifted_patches=shifted_patches)


__all__ = ["GridTokenizer", "PatchEmbedding", "MAX_PATCH_TOKENS", "check_grid_tokens", "check_switches",
           "check_token_count", "interpolate_grid_positions", "shift_image", "shifted_stack", "sincos_2d_table"]
