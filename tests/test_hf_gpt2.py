"""GPT-2 interop: Hugging Face weights give the same logits in xformer, and back (fp32, eval)."""
import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.errors import ConfigError

transformers = pytest.importorskip("transformers")
from xformer.interop.hf_gpt2 import (gpt2_config_to_xformer, load_gpt2, save_gpt2,  # noqa: E402
                                     xformer_config_to_gpt2)

TOL = 1e-4


def _hf_gpt2(**overrides):
    torch.manual_seed(0)
    config = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=64, bos_token_id=99, eos_token_id=99)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**config, **overrides})).eval()


def _logits(model, ids, mask=None):
    batch = {"input_ids": ids} if mask is None else {"input_ids": ids, "attention_mask": mask}
    return model(batch)["logits"]


@pytest.mark.parametrize("activation", ["gelu_new", "gelu", "relu"])
def test_logits_match_hf(activation):
    hf = _hf_gpt2(activation_function=activation, n_inner=96)
    ours = load_gpt2(hf)
    ids = torch.randint(0, 100, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(_logits(ours, ids), hf(ids).logits, atol=TOL, rtol=0)


def test_padding_matches_hf():
    hf, ids = _hf_gpt2(), torch.randint(0, 100, (2, 10))
    ours = load_gpt2(hf)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, :4] = 0  # left padding: HF needs the positions spelled out, xformer counts real tokens
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, position_ids=positions).logits
        out = _logits(ours, ids, mask)
    real = mask.bool()
    torch.testing.assert_close(out[real], ref[real], atol=TOL, rtol=0)
    # and the real tokens of the padded row equal the unpadded row alone
    torch.testing.assert_close(out[1, 4:], _logits(ours, ids[1:, 4:])[0], atol=1e-5, rtol=0)


def test_load_from_local_folder_and_export_round_trip(tmp_path):
    hf, ids = _hf_gpt2(), torch.randint(0, 100, (2, 9))
    hf.save_pretrained(tmp_path / "hf")
    ours = load_gpt2(tmp_path / "hf")
    with torch.no_grad():
        ref = hf(ids).logits
        torch.testing.assert_close(_logits(ours, ids), ref, atol=TOL, rtol=0)
        save_gpt2(ours, tmp_path / "xformer")
        back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "xformer").eval()
        torch.testing.assert_close(back(ids).logits, ref, atol=TOL, rtol=0)


def test_xformer_trained_model_exports_to_hf(tmp_path):
    """A model built (and here perturbed) in xformer, not one that came from HF, loads in transformers."""
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=32, n_layers=2, n_heads=4, activation="gelu_tanh"),
                                    PartConfig("text", {"vocab_size": 50, "max_positions": 16}),
                                    PartConfig("causal_lm")))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # biases and norms away from their zero/one init
    model.eval()
    save_gpt2(model, tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 50, (3, 16))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, _logits(model, ids), atol=TOL, rtol=0)


def test_config_round_trip_and_refusals():
    hf_config = _hf_gpt2(n_inner=80, layer_norm_epsilon=1e-6).config
    ours = gpt2_config_to_xformer(hf_config)
    assert (ours.core.d_ff, ours.core.norm_eps, ours.core.activation) == (80, 1e-6, "gelu_tanh")
    back = xformer_config_to_gpt2(ours)
    for key in ("n_embd", "n_layer", "n_head", "n_inner", "vocab_size", "n_positions", "layer_norm_epsilon",
                "activation_function"):
        assert getattr(back, key) == getattr(hf_config, key), key
    rope = ModelConfig("decoder", CoreConfig(d_model=32, n_heads=4, rope=True), PartConfig("text", {"vocab_size": 9}))
    with pytest.raises(ValueError, match="rotary"):
        xformer_config_to_gpt2(rope)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        gpt2_config_to_xformer(_hf_gpt2(scale_attn_by_inverse_layer_idx=True).config)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such folder.*never downloads"):
        load_gpt2(tmp_path / "gpt2")
