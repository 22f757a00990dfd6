"""Series tokenizers and the forecasting head: patching as PatchTST, channel independence, RevIN, pinball loss."""
import pytest
import torch
from torch import nn

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.heads.forecasting import pinball_loss
from xformer.tokenizers.series import RevIN, n_patches, patchify


def _model(tokenizer="series_patches", quantiles=None, c=3, L=32, H=8, **tok):
    core = CoreConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, init="torch")
    args = {"n_channels": c, "input_len": L, **tok}
    if tokenizer == "series_patches":
        args |= {"patch_len": 8, "stride": 4}
    return build_model(ModelConfig("encoder", core, PartConfig(tokenizer, args),
                                   PartConfig("forecast", {"horizon": H, "quantiles": quantiles}))).eval()


@pytest.mark.parametrize("L,patch_len,stride", [(336, 16, 8), (512, 16, 8), (96, 16, 8), (30, 7, 5)])
def test_patching_equals_patchtst(L, patch_len, stride):
    x = torch.randn(2, L, 3)
    # PatchTST (PatchTST_backbone.forward): ReplicationPad1d((0, stride)) on (B, C, L), then unfold
    ref = nn.ReplicationPad1d((0, stride))(x.permute(0, 2, 1)).unfold(-1, patch_len, stride)
    got = patchify(x, patch_len, stride, "end")
    assert got.shape == ref.shape == (2, 3, n_patches(L, patch_len, stride), patch_len)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert n_patches(L, patch_len, stride) == int((L - patch_len) / stride + 1) + 1  # PatchTST's patch_num
    assert patchify(x, patch_len, stride, "none").shape[2] == (L - patch_len) // stride + 1
    assert n_patches(336, 16, 8) == 42  # PatchTST/42


@pytest.mark.parametrize("L,patch_len,stride", [(512, 12, 12), (30, 7, 5), (64, 8, 8)])
def test_start_padding_leaves_out_the_first_steps_as_hugging_faces_patchify(L, patch_len, stride):
    """transformers' PatchTSTPatchify: sequence_start = L - (patch_len + stride (N - 1)), then unfold; so the last
    patch ends at the last step (512 / 12 / 12 leaves out 8 steps), where padding none leaves out the last ones."""
    x = torch.randn(2, L, 3)
    n = (L - patch_len) // stride + 1
    start = L - (patch_len + stride * (n - 1))
    ref = x[:, start:, :].unfold(-2, patch_len, stride).transpose(-2, -3)  # Hugging Face's (B, C, N, P)
    got = patchify(x, patch_len, stride, "start")
    assert got.shape == (2, 3, n_patches(L, patch_len, stride, "start"), patch_len) == (2, 3, n, patch_len)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert torch.equal(got[..., -1, -1], x[:, -1, :])  # the last step is read
    assert torch.equal(got, patchify(x, patch_len, stride, "none")) == (start == 0)


def test_token_shapes_and_channel_independence():
    B, L, C, H = 4, 32, 3, 8
    model = _model(c=C, L=L, H=H, affine=True)
    x = torch.randn(B, L, C)
    tokens = model.tokenizer({"inputs": x})
    assert tokens.x.shape == (B * C, n_patches(L, 8, 4), 16)
    y = model({"inputs": x})["prediction"]
    assert y.shape == (B, H, C)
    x2 = x.clone()
    x2[:, :, 1] = torch.randn(B, L) * 5 + 3  # change channel 1 only
    y2 = model({"inputs": x2})["prediction"]
    torch.testing.assert_close(y2[:, :, [0, 2]], y[:, :, [0, 2]], rtol=0, atol=1e-6)
    assert (y2[:, :, 1] - y[:, :, 1]).abs().max() > 1e-3


def test_step_tokens_mix_channels():
    B, L, C, H = 2, 24, 3, 6
    model = _model("series_steps", c=C, L=L, H=H)
    x = torch.randn(B, L, C)
    assert model.tokenizer({"inputs": x}).x.shape == (B, L, 16)
    y = model({"inputs": x})["prediction"]
    assert y.shape == (B, H, C)
    x2 = x.clone()
    x2[:, :, 1] += torch.randn(B, L)
    assert (model({"inputs": x2})["prediction"][:, :, 0] - y[:, :, 0]).abs().max() > 1e-4  # no independence here


def test_wrong_input_shape_is_one_clear_error():
    with pytest.raises(ValueError, match=r"inputs must be \(batch, 32, 3\)"):
        _model()({"inputs": torch.randn(2, 31, 3)})


@pytest.mark.parametrize("affine,subtract_last", [(False, False), (True, False), (True, True), (False, True)])
def test_revin_round_trip(affine, subtract_last):
    revin = RevIN(4, affine=affine, subtract_last=subtract_last)
    if affine:
        with torch.no_grad():
            revin.weight.uniform_(0.5, 2.0)
            revin.bias.normal_()
    x = torch.randn(5, 40, 4) * torch.tensor([1.0, 10.0, 0.1, 3.0]) + torch.tensor([0.0, 100.0, -5.0, 2.0])
    stats = revin.statistics(x)
    z = revin.normalize(x, stats)
    torch.testing.assert_close(revin.denormalize(z, stats), x, rtol=1e-5, atol=1e-4)
    if not affine and not subtract_last:
        torch.testing.assert_close(z.mean(1), torch.zeros(5, 4), atol=1e-5, rtol=0)
        torch.testing.assert_close(z.std(1, unbiased=False), torch.ones(5, 4), atol=1e-3, rtol=0)
    if affine and not subtract_last:  # x' = gamma (x - mu) / sigma + beta
        ref = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
        torch.testing.assert_close(z, ref * revin.weight + revin.bias, rtol=1e-5, atol=1e-5)
    if subtract_last:
        assert torch.all(((z - (revin.bias if affine else 0)))[:, -1].abs() < 1e-5)


def test_revin_makes_forecast_scale_equivariant():
    model = _model(c=2, L=32, H=8)
    x = torch.randn(3, 32, 2)
    y = model({"inputs": x})["prediction"]
    torch.testing.assert_close(model({"inputs": 10 * x + 7})["prediction"], 10 * y + 7, rtol=1e-4, atol=1e-3)


def test_pinball_loss_values():
    q = torch.tensor([0.1, 0.5, 0.9])
    target = torch.tensor([1.0])
    # u = y - y_hat; L_q = max(q u, (q-1) u)
    assert pinball_loss(torch.tensor([[0.0, 0.0, 0.0]]), target, q).item() == pytest.approx((0.1 + 0.5 + 0.9) / 3)
    assert pinball_loss(torch.tensor([[2.0, 2.0, 2.0]]), target, q).item() == pytest.approx((0.9 + 0.5 + 0.1) / 3)
    assert pinball_loss(torch.tensor([[1.0, 3.0, 1.0]]), target, q).item() == pytest.approx(1.0 / 3)


def test_quantile_head_outputs_and_loss():
    B, L, C, H = 2, 32, 3, 8
    model = _model(quantiles=[0.9, 0.1, 0.5], c=C, L=L, H=H)
    batch = {"inputs": torch.randn(B, L, C), "targets": torch.randn(B, H, C)}
    out = model(batch)
    assert out["quantiles"].shape == (B, H, C, 3)
    torch.testing.assert_close(out["prediction"], out["quantiles"][..., 1])  # sorted: 0.1, 0.5, 0.9
    ref = pinball_loss(out["quantiles"], batch["targets"], torch.tensor([0.1, 0.5, 0.9]))
    torch.testing.assert_close(out["loss"], ref)
    assert int(out["loss_weight"]) == B * H * C
    with pytest.raises(ValueError, match="include 0.5"):
        _model(quantiles=[0.1, 0.9])


def test_mse_loss_and_weight():
    model = _model(c=3, L=32, H=8)
    batch = {"inputs": torch.randn(2, 32, 3), "targets": torch.randn(2, 8, 3)}
    out = model(batch)
    torch.testing.assert_close(out["loss"], ((out["prediction"] - batch["targets"]) ** 2).mean())
    assert int(out["loss_weight"]) == 2 * 8 * 3
