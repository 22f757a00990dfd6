"""A prototype of locality self-attention (LSA; Lee et al. 2021, "Vision Transformer for Small-Size Datasets")
for validation screens only, not a model of the project: it patches the core's SelfAttention, in this process,
with a learned temperature and a diagonal mask, then runs the xformer CLI with the arguments given:

    LSA(Q, K, V) = softmax(t_h Q K^T + M_diag + M) V,   M_diag[i, i] = -inf,

so no token attends to itself. Two forms of the temperature t_h:

    --per-head  (the authors' code, aanna0701/SPT_LSA_ViT models/vit.py: ``self.scale =
                nn.Parameter(self.scale * torch.ones(heads))``): one t_h per head, learned directly, t_h = d_k^-1/2
                at the start
    default     (the first screen, docs/vision.md third round): one scalar per layer, t = e^s / sqrt(d_k),
                s learned, 0 at the start

Both equal plain attention with a diagonal mask at initialisation. Why a patch and not a core class: the core is
at its 700-line budget (tests/test_layout.py), and neither screen (docs/vision.md) found LSA better than plain
attention on digits, so it has not earned its lines.

    OMP_NUM_THREADS=1 python benchmarks/lsa_prototype.py [--per-head] train tasks/cct_digits.yaml \
        data.args.val_seed=F train.seed=F --threads 1 --out DIR --quiet
"""
import math
import sys

import torch
from torch import nn

from xformer.core import attention as A

PER_HEAD = "--per-head" in sys.argv[1:2]
_init = A.SelfAttention.__init__


def init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    if PER_HEAD:
        self.lsa_scale = nn.Parameter(torch.full((self.n_heads,), self.head_dim ** -0.5))
    else:
        self.lsa_log_scale = nn.Parameter(torch.zeros(()))


def attend(self, q, k, v, mask, causal):
    off_diagonal = ~torch.eye(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device)
    if mask is None:
        mask = off_diagonal
    elif mask.dtype == torch.bool:
        mask = mask & off_diagonal
    else:
        mask = mask.masked_fill(~off_diagonal, float("-inf"))
    # scaled_dot_product_attention divides by sqrt(d_k) itself: multiplying q by t sqrt(d_k) makes the scale t
    factor = (self.lsa_scale * math.sqrt(self.head_dim)).view(1, -1, 1, 1) if PER_HEAD else self.lsa_log_scale.exp()
    return A._HeadsAttention._attend(self, q * factor, k, v, mask, causal)


A.SelfAttention.__init__ = init
A.SelfAttention._attend = attend

from xformer.cli import main  # noqa: E402

sys.exit(main(sys.argv[1 + PER_HEAD:]))
