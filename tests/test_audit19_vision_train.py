"""Audit 19 (vision and training conventions): SPT's LayerNorm eps against the authors' code, the benchmark's
parameter count, stochastic depth of a one-layer core, and the documented conventions of weight decay and
random erasing (each pinned so that the docs stay true)."""
import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xformer.config import from_dict, load_yaml
from xformer.core import CoreConfig, build
from xformer.models import ModelConfig, build_model
from xformer.train.optim import param_groups

ROOT = Path(__file__).parents[1]


def reference_spt(x: torch.Tensor, p: int, norm: nn.LayerNorm, linear: nn.Linear) -> torch.Tensor:
    """aanna0701/SPT_LSA_ViT @ 54bd796 models/SPT.py (ShiftedPatchTokenization, is_pe=True, and PatchShifting),
    transcribed without einops: pad by p/2, the four diagonal crops, Rearrange('b c (h p1) (w p2) -> b (h w)
    (p1 p2 c)'), nn.LayerNorm(patch_dim) (eps 1e-5), nn.Linear(patch_dim, dim)."""
    s = p // 2
    pad = F.pad(x, (s, s, s, s))
    lu, ru = pad[:, :, :-2 * s, :-2 * s], pad[:, :, :-2 * s, 2 * s:]
    lb, rb = pad[:, :, 2 * s:, :-2 * s], pad[:, :, 2 * s:, 2 * s:]
    stack = torch.cat([x, lu, ru, lb, rb], dim=1)
    b, c5, h, w = stack.shape
    patches = stack.reshape(b, c5, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c5)
    return linear(norm(patches))


def xformer_feature_of_reference(channels: int, p: int) -> torch.Tensor:
    """perm[f_xformer] = f_reference. The reference flattens a patch as (p1 p2 c5) with blocks [x, lu, ru, lb, rb];
    xformer (F.unfold) as (c5 p1 p2) with blocks [x, (-s,-s), (-s,+s), (+s,-s), (+s,+s)]: lu (x moved down-right)
    is xformer's block 4, ru 3, lb 2, rb 1."""
    block = [0, 4, 3, 2, 1]
    perm = torch.empty(5 * channels * p * p, dtype=torch.long)
    for b_ref in range(5):
        for c in range(channels):
            for p1 in range(p):
                for p2 in range(p):
                    perm[(block[b_ref] * channels + c) * p * p + p1 * p + p2] = (p1 * p + p2) * 5 * channels \
                        + b_ref * channels + c
    return perm


def test_spt_tokens_equal_the_authors_code_on_digits_with_the_vit_recipes_norm_eps():
    """The recipe's core.norm_eps (1e-6, timm's for the blocks) must not reach SPT's LayerNorm, which is the
    reference's nn.LayerNorm(patch_dim), eps 1e-5: on sparse digits patches the two differ by ~1%."""
    from sklearn.datasets import load_digits

    config = copy.deepcopy(load_yaml(ROOT / "tasks/vit_digits.yaml")["model"])
    assert config["core"]["norm_eps"] == 1e-6
    config["tokenizer"]["args"].update(image_size=8, channels=1, shifted_patches=True)
    config["head"]["args"]["n_classes"] = 10
    model = build_model(from_dict(ModelConfig, config, "model")).double()
    tokenizer, p, d = model.tokenizer, 2, 64

    torch.manual_seed(0)
    norm, linear = nn.LayerNorm(5 * p * p).double(), nn.Linear(5 * p * p, d).double()
    with torch.no_grad():  # gains and shifts away from 1 and 0, so the feature order must match too
        norm.weight.copy_(1 + 0.2 * torch.randn(5 * p * p))
        norm.bias.copy_(0.2 * torch.randn(5 * p * p))
        perm = xformer_feature_of_reference(1, p)
        tokenizer.spt_norm.weight.copy_(norm.weight[perm])
        tokenizer.spt_norm.bias.copy_(norm.bias[perm])
        tokenizer.proj.weight.copy_(linear.weight[:, perm].reshape(d, 5, p, p))
        tokenizer.proj.bias.copy_(linear.bias)
        images = torch.tensor(load_digits().images[:256], dtype=torch.float64).unsqueeze(1) / 16
        want = reference_spt(images, p, norm, linear)
        got = tokenizer({"images": images}).x[:, 1:] - tokenizer.pos_grid  # after [CLS], without the positions
    assert (got - want).abs().max().item() <= 1e-10
    assert tokenizer.spt_norm.eps == 1e-5


def test_the_benchmark_counts_parameters_not_batchnorm_statistics(tmp_path, monkeypatch):
    """The CNN has 65,834 parameters; its checkpoint also holds BatchNorm's running mean / variance and counters
    (388 numbers), which benchmarks/vit_digits.py counted before (66,222)."""
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.delitem(sys.modules, "vit_digits", raising=False)
    import vit_digits

    config = load_experiment(ROOT / "tasks/cnn_digits.yaml", ["train.steps=1", "train.eval_every=1",
                                                              "train.device=cpu"])
    train_run(config, tmp_path / "cnn")
    assert vit_digits.parameter_count(tmp_path / "cnn") == 65_834


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_stochastic_depth_is_zero_at_the_first_block_for_every_depth(rate):
    """timm's calculate_drop_path_rates and CCT: torch.linspace(0, rate, depth), so one layer gets [0.0]."""
    for depth in range(1, 13):
        assert build.drop_path_rates(rate, depth) == torch.linspace(0, rate, depth).tolist()
    one = build.encoder(CoreConfig(d_model=16, n_layers=1, n_heads=2, drop_path=rate)).train()
    assert isinstance(one.blocks[0].res1.drop_path, nn.Identity)
    x = torch.randn(8, 3, 16)
    torch.testing.assert_close(one(x), one(x), rtol=0, atol=0)


def test_weight_decay_follows_nanogpt_tokens_and_positions_included():
    """docs/training.md and xformer/train/optim.py: every trained parameter with >= 2 dimensions decays, the class
    and register tokens and learned positions too (timm's no_weight_decay() would exclude them); 1-D ones do not."""
    config = copy.deepcopy(load_yaml(ROOT / "tasks/vit_digits.yaml")["model"])
    config["tokenizer"]["args"].update(image_size=8, channels=1, register_tokens=2)
    config["head"]["args"]["n_classes"] = 10
    model = build_model(from_dict(ModelConfig, config, "model"))
    decay, no_decay = (set(map(id, g["params"])) for g in param_groups(model, 0.05))
    names = {n: id(p) for n, p in model.named_parameters()}
    for name in ("tokenizer.cls_token", "tokenizer.reg_tokens", "tokenizer.pos_grid", "tokenizer.pos_prefix",
                 "tokenizer.proj.weight", "core.blocks.0.attn.qkv.weight", "head.fc.weight"):
        assert names[name] in decay, name
    assert {n for n, i in names.items() if i in no_decay} == {n for n, p in model.named_parameters() if p.ndim < 2}


def test_random_erasing_fills_the_box_with_zero_after_normalising():
    """docs/vision.md: the box is filled with 0, i.e. the normalising mean colour (timm's --remode const), not
    timm train.py's / DeiT's default per-pixel N(0, 1) noise (--remode pixel)."""
    from xformer.data.image_augment import train_transform

    torch.manual_seed(0)
    transform = train_transform((16, 16), mean=[0.5], std=[0.25], random_erasing=1.0)
    out = transform(torch.full((1, 16, 16), 0.75))  # normalised: (0.75 - 0.5) / 0.25 = 1 everywhere
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert (out == 0).sum() > 0


def test_the_memory_check_counts_a_model_with_stochastic_depth_over_several_layers():
    """drop_path_rates runs torch.linspace; under memory.py's meta-device build its .tolist() raised, so every model
    of two or more layers went uncounted and the too-large check was silently skipped (the CPU device fixes it)."""
    from xformer.models import PartConfig
    from xformer.train.memory import count_parameters

    config = ModelConfig("encoder", CoreConfig(d_model=16, n_layers=3, n_heads=2, drop_path=0.1),
                         PartConfig("image_patches", {"image_size": 8, "channels": 1, "patch_size": 2}),
                         PartConfig("classification", {"n_classes": 10}))
    assert count_parameters(config) == sum(p.numel() for p in build_model(config).parameters())
