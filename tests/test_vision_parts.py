"""Image tokenizer and classification head: shapes, errors, positions, pooling with padding."""
import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.tokens import Tokens
from xformer.tokenizers.image import interpolate_grid_positions, sincos_2d_table
from xformer.heads.classification import ClassificationHead
from xformer.tokenizers.image import PatchEmbedding

CORE = CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64)



def vit(tokenizer=None, head=None):
    return build_model(ModelConfig("encoder", CORE, PartConfig("image_patches", {"image_size": 16, "patch_size": 4,
                                                                                 "channels": 3, **(tokenizer or {})}),
                                   PartConfig("classification", {"n_classes": 5, **(head or {})})))


@pytest.mark.parametrize("channels", [1, 3, 7])
def test_patch_tokens_shape_and_state(channels):
    emb = PatchEmbedding(32, image_size=(16, 24), patch_size=4, channels=channels, register_tokens=2)
    tokens = emb({"images": torch.randn(2, channels, 16, 24)})
    assert tokens.x.shape == (2, 1 + 2 + 4 * 6, 32)
    assert tokens.state == {"prefix_tokens": 3, "class_token": True, "grid": (4, 6)}
    assert tokens.padding_mask is None


def test_patch_embedding_is_a_linear_map_of_each_patch():
    emb = PatchEmbedding(8, image_size=8, patch_size=4, channels=2, class_token=False, positions="none")
    img = torch.randn(1, 2, 8, 8)
    x = emb({"images": img}).x
    patch = img[0, :, 4:8, 0:4]  # row 1, column 0 -> token 1 * 2 + 0
    expected = emb.proj.weight.flatten(1) @ patch.flatten() + emb.proj.bias
    torch.testing.assert_close(x[0, 2], expected, atol=1e-5, rtol=1e-5)


def test_non_divisible_size_and_wrong_channels_are_one_line_errors():
    emb = PatchEmbedding(32, image_size=16, patch_size=4, channels=3)
    with pytest.raises(ValueError, match=r"image size 18x16 is not divisible by the patch size 4x4.*16x16") as e:
        emb({"images": torch.randn(1, 3, 18, 16)})
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="channels=1"):
        emb({"images": torch.randn(1, 1, 16, 16)})
    with pytest.raises(ValueError, match="not divisible"):
        PatchEmbedding(32, image_size=30, patch_size=4)
    with pytest.raises(ConfigError, match="tokenizer 'image_patches'.*not divisible"):
        vit({"image_size": 15})


def test_class_and_register_tokens_are_prepended_in_order():
    emb = PatchEmbedding(16, image_size=8, patch_size=4, channels=1, register_tokens=3, positions="none")
    x = emb({"images": torch.zeros(2, 1, 8, 8)}).x
    torch.testing.assert_close(x[:, 0], emb.cls_token[0, 0].expand(2, -1))
    torch.testing.assert_close(x[:, 1:4], emb.reg_tokens[0].expand(2, -1, -1))
    torch.testing.assert_close(x[:, 4:], emb.proj.bias.expand(2, 4, -1))  # zero image: conv bias only
    no_prefix = PatchEmbedding(16, image_size=8, patch_size=4, channels=1, class_token=False)
    out = no_prefix({"images": torch.zeros(1, 1, 8, 8)})
    assert out.x.shape[1] == 4 and out.state["prefix_tokens"] == 0 and not out.state["class_token"]


def test_sincos_positions_are_the_fixed_2d_table():
    emb = PatchEmbedding(16, image_size=(8, 12), patch_size=4, channels=1, class_token=False, positions="sincos")
    img = torch.randn(1, 1, 8, 12)
    with_pos = emb({"images": img}).x
    emb.positions = "none"
    torch.testing.assert_close(with_pos - emb({"images": img}).x, sincos_2d_table(2, 3, 16)[None])
    assert not any("sincos" in k for k in emb.state_dict())  # fixed, not saved
    emb.positions = "sincos"
    bigger = emb({"images": torch.randn(1, 1, 16, 12)})  # a new grid gets its own table
    assert bigger.x.shape == (1, 12, 16)


def test_learned_positions_are_resampled_for_other_image_sizes():
    emb = PatchEmbedding(16, image_size=8, patch_size=4, channels=1, positions="learned")
    img = torch.randn(1, 1, 16, 16)
    x = emb({"images": img}).x
    expected_grid = interpolate_grid_positions(emb.pos_grid, (2, 2), (4, 4))
    patches = emb.proj(img).flatten(2).transpose(1, 2)
    torch.testing.assert_close(x[0, 1:], (patches + expected_grid)[0])
    torch.testing.assert_close(x[0, 0], emb.cls_token[0, 0] + emb.pos_prefix[0])
    # a checkpoint trained at 8x8 loads into a 16x16 tokenizer, its grid resampled bicubically
    big = PatchEmbedding(16, image_size=16, patch_size=4, channels=1)
    big.load_state_dict(emb.state_dict())
    torch.testing.assert_close(big.pos_grid.data, expected_grid)


def _tokens(x, n_prefix, mask=None, cls=True):
    return Tokens(x, mask, state={"prefix_tokens": n_prefix, "class_token": cls})


def test_cls_and_mean_pooling():
    head = ClassificationHead(8, 3, pool="cls")
    h = torch.randn(2, 5, 8)
    torch.testing.assert_close(head.pooled(h, _tokens(h, 2)), h[:, 0])
    with pytest.raises(ValueError, match="class token"):
        head.pooled(h, _tokens(h, 0, cls=False))
    mean = ClassificationHead(8, 3, pool="mean")
    torch.testing.assert_close(mean.pooled(h, _tokens(h, 2)), h[:, 2:].mean(1))  # prefix tokens skipped


@pytest.mark.parametrize("pool", ["mean", "attention"])
def test_pooling_ignores_padding(pool):
    """Series-style tokens, right-padded: padding content must not change the pooled vector."""
    head = ClassificationHead(8, 3, pool=pool, n_heads=2)
    h = torch.randn(2, 1 + 6, 8)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    noisy = h.clone()
    noisy[1, 4:] = 100.0
    a, b = head.pooled(h, _tokens(h, 1, mask)), head.pooled(noisy, _tokens(noisy, 1, mask))
    torch.testing.assert_close(a, b)
    short = head.pooled(h[1:, :4], _tokens(h[1:, :4], 1))  # the same row without its padding
    torch.testing.assert_close(b[1:], short)
    # and the prefix token is not content either
    moved = noisy.clone()
    moved[:, 0] = -50.0
    torch.testing.assert_close(head.pooled(moved, _tokens(moved, 1, mask)), b)


def test_head_loss_label_smoothing_and_soft_targets():
    model = vit(head={"label_smoothing": 0.1})
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 4])
    out = model({"images": images, "labels": labels})
    assert out["logits"].shape == (4, 5) and int(out["loss_weight"]) == 4
    logp = out["logits"].log_softmax(-1)
    q = torch.full((4, 5), 0.1 / 5)
    q[torch.arange(4), labels] += 0.9
    torch.testing.assert_close(out["loss"], -(q * logp).sum(-1).mean())
    soft = model({"images": images, "labels": q})  # MixUp-style probabilities (smoothing applied once more)
    assert torch.isfinite(soft["loss"])
    assert "loss" not in model({"images": images})


@pytest.mark.parametrize("pool,extra", [("cls", {}), ("mean", {"class_token": False}), ("attention", {"register_tokens": 2})])
def test_vit_end_to_end_backward(pool, extra):
    model = vit(tokenizer=extra, head={"pool": pool})
    out = model({"images": torch.randn(2, 3, 16, 16), "labels": torch.tensor([1, 3])})
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_pool_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown pool 'max'"):
        vit(head={"pool": "max"})
