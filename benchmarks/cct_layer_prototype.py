"""A prototype of CCT's own encoder layer, for validation screens only, not a model of the project: it patches the
core's EncoderBlock, in this process, then runs the xformer CLI with the arguments given.

CCT (SHI-Labs/Compact-Transformers ``src/utils/transformers.py``, ``TransformerEncoderLayer.forward``) normalises
the residual stream itself between its two sub-layers, which is neither pre- nor post-norm:

    x = x + DropPath(Attn(LN0(x)))
    x = LN1(x)
    x = x + DropPath(FFN(x))

xformer's recipes use the ViT's pre-norm block, x = x + FFN(LN1(x)) in the last line: with the same weights the
two give logits 0.09-0.12 apart on the CCT recipes (tests/test_reference_models.py). Here ``res2.norm`` plays LN1.
Why a patch and not a core class: the core is at its 700-line budget (tests/test_layout.py), and the screen on
digits (docs/vision.md, fifteenth round) found the layer no better than the pre-norm block.

    OMP_NUM_THREADS=1 python benchmarks/cct_layer_prototype.py train tasks/cct_digits.yaml \
        data.args.val_seed=F train.seed=F --threads 1 --out DIR --quiet
"""
import sys

from xformer.core import blocks


def forward(self, x, mask=None):
    x = self.res1(x, lambda h: self.attn(h, mask))
    x = self.res2.norm(x)
    return x + self.res2.branch(self.mlp(x))


blocks.EncoderBlock.forward = forward

from xformer.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
