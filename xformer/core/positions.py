"""Rotary positions, applied inside attention. Absolute positions are the tokenizers' (xformer/tokenizers)."""
import torch
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al. 2021), "rotate half" layout (GPT-NeoX, LLaMA): the pair
    (x_i, x_{i+d/2}) at position p is rotated by the angle p * theta_i, theta_i = base^(-2i/d),

        rot(x) = x * cos(p theta) + rotate_half(x) * sin(p theta),   rotate_half([x1, x2]) = [-x2, x1];

    a rotation keeps |x|, and <rot_p(q), rot_s(k)> depends only on p - s."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate x of shape (B, heads, N, head_dim) for positions offset .. offset+N-1."""
        pos = torch.arange(offset, offset + x.shape[-2], device=x.device, dtype=torch.float32)
        angles = torch.outer(pos, self.inv_freq).repeat(1, 2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin
