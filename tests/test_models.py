"""Tokenizer -> Core -> Head composition and the registry."""
import pytest
import torch
from torch import nn

from xformer import CoreConfig, ModelConfig, PartConfig, Tokens, build_model, register_head, register_tokenizer
from xformer.analysis.attention_maps import capture_attention


def gpt(**core):
    return build_model(ModelConfig("decoder", CoreConfig(d_model=32, n_layers=2, n_heads=4, **core),
                                   PartConfig("text", {"vocab_size": 20, "max_positions": 16})))


def test_causal_lm_is_weight_tied_and_returns_loss():
    model = gpt()
    assert model.head.proj.weight is model.tokenizer.embed.weight
    ids, labels = torch.randint(0, 20, (2, 6)), torch.randint(0, 20, (2, 6))
    out = model({"input_ids": ids, "labels": labels})
    assert out["logits"].shape == (2, 6, 20)
    assert out["loss_weight"].item() == 12
    assert abs(out["loss"].item() - torch.log(torch.tensor(20.0)).item()) < 0.3  # near uniform at init


def test_model_kv_cache_equals_full_forward():
    model = gpt().eval()
    ids = torch.randint(0, 20, (2, 7))
    full = model({"input_ids": ids})["logits"]
    cache = model.new_cache()
    steps = [model({"input_ids": ids[:, i: i + 1]}, cache=cache)["logits"] for i in range(7)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)


def test_left_padded_prompt_gets_same_logits_as_unpadded():
    model = gpt().eval()
    ids = torch.randint(0, 20, (1, 5))
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), ids], 1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    a = model({"input_ids": ids})["logits"]
    b = model({"input_ids": padded, "attention_mask": mask})["logits"][:, 2:]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_a_new_modality_plugs_in_without_touching_the_core():
    """A made-up 'audio frames' tokenizer and a regression head, registered from outside."""

    class Frames(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(3, dim)

        def forward(self, batch, offset=0):
            return Tokens(self.proj(batch["frames"]))

    class MeanRegression(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.out = nn.Linear(dim, 1)

        def forward(self, hidden, tokens, batch):
            pred = self.out(hidden.mean(1)).squeeze(-1)
            return {"prediction": pred, "loss": nn.functional.mse_loss(pred, batch["target"]),
                    "loss_weight": torch.tensor(pred.numel())}

    register_tokenizer("test_frames")(lambda core: Frames(core.d_model))
    register_head("test_mean_regression")(lambda core, tokenizer: MeanRegression(core.d_model))
    model = build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_heads=2, n_layers=1),
                                    PartConfig("test_frames"), PartConfig("test_mean_regression")))
    out = model({"frames": torch.randn(4, 10, 3), "target": torch.randn(4)})
    assert out["prediction"].shape == (4,)
    out["loss"].backward()


def test_registering_a_different_part_under_a_taken_name_fails():
    with pytest.raises(ValueError, match="already registered"):
        register_tokenizer("text")(lambda core: None)


def test_capture_attention_returns_one_map_per_layer():
    model = gpt().eval()
    with capture_attention(model) as maps:
        model({"input_ids": torch.randint(0, 20, (1, 5))})
    assert len(maps) == 2 and maps[0].shape == (1, 4, 5, 5)
    assert torch.all(maps[0].triu(1) == 0)  # causal
