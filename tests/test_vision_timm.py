"""Parity with timm's VisionTransformer on copied weights, both directions (fp32, eval)."""
import pytest
import torch

timm = pytest.importorskip("timm")
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

from xformer.interop import config_from_timm_vit, from_timm_vit, save_timm_safetensors, to_timm_state_dict  # noqa: E402

TINY = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=10)



def _randomised(vit):
    """timm zero-initialises some tensors (head, biases); make every weight matter."""
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return vit.eval()


def _roundtrip(vit, images):
    model = from_timm_vit(vit).eval()
    with torch.no_grad():
        ours, theirs = model({"images": images})["logits"], vit(images)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    return model


@pytest.mark.parametrize("kwargs", [
    {}, {"global_pool": "avg"}, {"reg_tokens": 2}, {"reg_tokens": 2, "no_embed_class": True},
    {"class_token": False, "global_pool": "avg"}, {"init_values": 0.1}, {"in_chans": 1, "qkv_bias": False},
], ids=["cls", "avg", "registers", "no_embed_class", "no_cls", "layer_scale", "gray_no_qkv_bias"])
def test_tiny_vit_logits_match_both_ways(kwargs, tmp_path):
    vit = _randomised(VisionTransformer(**TINY, **kwargs))
    images = torch.randn(3, vit.patch_embed.proj.in_channels, 32, 32)
    model = _roundtrip(vit, images)
    # export: a fresh timm model accepts xformer's weights (strict) and gives the same logits
    fresh = VisionTransformer(**TINY, **kwargs).eval()
    fresh.load_state_dict(to_timm_state_dict(model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(images), vit(images), atol=1e-5, rtol=0)
    # the comparison is not vacuous: one changed weight changes the logits
    with torch.no_grad():
        model.core.blocks[1].mlp.fc2.bias[0] += 1.0  # one channel (LayerNorm would cancel a shift of all)
        assert (model({"images": images})["logits"] - vit(images)).abs().max() > 1e-2


def test_config_from_timm_matches_the_architecture():
    cfg = config_from_timm_vit(VisionTransformer(**TINY, reg_tokens=4))
    assert (cfg.architecture, cfg.core.d_model, cfg.core.n_layers, cfg.core.n_heads, cfg.core.d_ff) == \
        ("encoder", 64, 2, 4, 256)
    assert cfg.core.norm_eps == 1e-6 and cfg.core.norm_first and cfg.core.has_final_norm
    assert cfg.tokenizer.args["register_tokens"] == 4 and cfg.tokenizer.args["patch_size"] == [8, 8]
    assert cfg.head.args == {"n_classes": 10, "pool": "cls", "norm": False}


def test_safetensors_export_loads_into_timm(tmp_path):
    from safetensors.torch import load_file

    vit = _randomised(VisionTransformer(**TINY))
    path = tmp_path / "vit.safetensors"
    save_timm_safetensors(from_timm_vit(vit), path)
    fresh = VisionTransformer(**TINY).eval()
    fresh.load_state_dict(load_file(str(path)), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), vit(x), atol=1e-6, rtol=0)


def test_unsupported_variants_are_refused_in_one_line():
    with pytest.raises(ValueError, match="q/k normalisation"):
        config_from_timm_vit(VisionTransformer(**TINY, qk_norm=True))


def test_vit_tiny_patch16_224_parity():
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    images = torch.randn(1, 3, 224, 224)
    model = _roundtrip(_randomised(vit), images)
    fresh = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    fresh.load_state_dict(to_timm_state_dict(model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(images), vit(images), atol=1e-5, rtol=0)
