"""A prototype of locality self-attention (LSA; Lee et al. 2021, "Vision Transformer for Small-Size Datasets")
for validation screens only, not a model of the project: it patches the core's SelfAttention, in this process,
with a learned temperature and a diagonal mask, then runs the xformer CLI with the arguments given:

    LSA(Q, K, V) = softmax(e^s Q K^T / sqrt(d_k) + M_diag + M) V,   M_diag[i, i] = -inf,

s a learned scalar per layer initialised at 0 (the paper's tau = sqrt(d_k), learned as log 1/tau); no token
attends to itself. Why a patch and not a core class: the core is at its 700-line budget (tests/test_layout.py),
and this screen (docs/vision.md, third round) found LSA worse than plain attention on digits, so it has not
earned its lines.

    OMP_NUM_THREADS=1 python benchmarks/lsa_prototype.py train tasks/cct_digits.yaml data.args.val_seed=F \
        train.seed=F --threads 1 --out DIR --quiet
"""
import sys

import torch
from torch import nn

from xformer.core import attention as A

_init = A.SelfAttention.__init__


def init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.lsa_log_scale = nn.Parameter(torch.zeros(()))


def attend(self, q, k, v, mask, causal):
    off_diagonal = ~torch.eye(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device)
    if mask is None:
        mask = off_diagonal
    elif mask.dtype == torch.bool:
        mask = mask & off_diagonal
    else:
        mask = mask.masked_fill(~off_diagonal, float("-inf"))
    return A._HeadsAttention._attend(self, q * self.lsa_log_scale.exp(), k, v, mask, causal)


A.SelfAttention.__init__ = init
A.SelfAttention._attend = attend

from xformer.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
