"""Norms, feed-forward networks and dropout, the parts a block is built from."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """y = x * m / (1 - p), m ~ Bernoulli(1 - p) per element (Srivastava et al. 2014). On CPU m = U(0, 1) >= p,
    the same distribution, faster than torch's CPU Bernoulli sampler (benchmarks/dropout_cpu.py)."""
    if not training or p == 0.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    return x * (torch.rand_like(x) >= p).to(x.dtype).mul_(1.0 / (1.0 - p))


def unless_idle(module: nn.Module, x: Tensor) -> Tensor:
    """module(x), or x uncalled from a hookless Identity, or Dropout at p = 0 or in eval: small steps are call-bound."""
    idle = isinstance(module, nn.Identity) or isinstance(module, nn.Dropout) and not (module.p and module.training)
    return x if idle and not (module._forward_hooks or module._forward_pre_hooks) else module(x)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, state and repr) computed by :func:`dropout`."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        if not 0.0 <= p < 1.0:  # p = 1 would zero everything and divide by 0; checked once for every part
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        super().__init__(p, inplace)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm of (..., d) tokens, PatchTST's ``Transpose, BatchNorm1d(d), Transpose`` (padding tokens would
    count: for unpadded inputs): y = (x - mu_B) / sqrt(var_B + eps) * gamma + beta, per feature over all B*N tokens."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def make_norm(kind: str, dim: int, eps: float = 1e-5) -> nn.Module:
    """LayerNorm, RMSNorm or BatchNorm over the last dimension.

    LayerNorm: y = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta   (Ba et al. 2016), per token
    RMSNorm:   y = x / sqrt(mean(x^2) + eps) * gamma                  (Zhang & Sennrich 2019), per token
    BatchNorm: per feature, over the tokens of the batch              (Ioffe & Szegedy 2015; PatchTST)
    """
    norms = {"layernorm": nn.LayerNorm, "rmsnorm": nn.RMSNorm, "batchnorm": TokenBatchNorm}
    if kind not in norms:
        raise ValueError(f"unknown norm {kind!r}; choose layernorm, rmsnorm or batchnorm")
    return norms[kind](dim, eps=eps)


class Mlp(nn.Module):
    """Position-wise feed-forward fc2(dropout(act(fc1(x)))), act: GELU (exact) x * Phi(x),
    GELU (tanh) 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) or ReLU max(0, x)."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu", dropout: float = 0.0, bias: bool = True):
        super().__init__()
        activations = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU()}
        if activation not in activations:
            raise ValueError(f"unknown activation {activation!r}; choose gelu, gelu_tanh, relu or swiglu")
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = activations[activation]
        self.drop = Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(unless_idle(self.drop, self.act(self.fc1(x))))


class SwiGLU(nn.Module):
    """Gated feed-forward (Shazeer 2020): fc2(dropout(SiLU(x W_gate) * (x W_up))), fc1 = [W_gate; W_up]."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, 2 * hidden, bias=bias)
        self.drop = Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(unless_idle(self.drop, F.silu(gate) * up))


def make_feed_forward(activation: str, dim: int, hidden: int, dropout: float = 0.0, bias: bool = True) -> nn.Module:
    return SwiGLU(dim, hidden, dropout, bias) if activation == "swiglu" else Mlp(dim, hidden, activation, dropout, bias)

