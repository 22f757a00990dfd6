"""``train.compile``: one training forward + loss of every kind of model traces as one graph, no graph break.

A graph break splits the compiled step into pieces run by Python between them (slower, and a
data-dependent one recompiles per value). ``torch._dynamo.explain`` only traces (no Inductor), so
these checks take seconds. Before this test the text tokenizer broke the graph on ``bool(mask.all())``
and ``int(pos.max())``, and every ``Tokens`` made without a state on its dataclass default factory.
"""
import pytest
import torch
import torch._dynamo as dynamo
from torch._dynamo.utils import counters

from xformer import CoreConfig, ModelConfig, PartConfig, build_model

B, N, V = 2, 8, 30


def core(**args) -> CoreConfig:
    return CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, **args)


def text(name: str = "text", **args) -> PartConfig:
    return PartConfig(name, {"vocab_size": V, "max_positions": 16, **args})


def batches() -> dict:
    """The batch of each model; left padding (a prompt) and right padding (pad_collate) in one row of two."""
    ids, labels, classes = torch.randint(1, V, (B, N)), torch.randint(0, V, (B, N)), torch.randint(0, 3, (B,))
    left, right = torch.ones(B, N, dtype=torch.long), torch.ones(B, N, dtype=torch.bool)
    left[0, :3], right[1, 5:] = 0, False
    images, series = torch.randn(B, 3, 8, 8), torch.randn(B, 16, 2)
    return {
        "gpt": {"input_ids": ids, "labels": labels},
        "gpt_mask_all_ones": {"input_ids": ids, "attention_mask": torch.ones(B, N, dtype=torch.long), "labels": labels},
        "gpt_left_padded": {"input_ids": ids, "attention_mask": left, "labels": labels},
        "bert_mlm": {"input_ids": ids, "attention_mask": right, "labels": labels},
        "text_classifier_padded": {"input_ids": ids, "attention_mask": right, "labels": classes},
        "seq2seq_padded": {"src_ids": ids, "src_mask": right, "input_ids": ids, "attention_mask": right,
                           "labels": labels},
        "vit_patches": {"images": images, "labels": classes},
        "vit_conv": {"images": images, "labels": classes},
        "patchtst_forecaster": {"inputs": series, "targets": torch.randn(B, 4, 2)},
        "series_classifier": {"inputs": series, "labels": classes},
    }


CLASSIFY = PartConfig("classification", {"n_classes": 3, "pool": "mean"})
MODELS = {
    "gpt": ModelConfig("decoder", core(), text()),
    "gpt_mask_all_ones": ModelConfig("decoder", core(), text()),
    "gpt_left_padded": ModelConfig("decoder", core(), text()),
    "bert_mlm": ModelConfig("encoder", core(norm_first=False, final_norm=False), text("bert_text"),
                            PartConfig("masked_lm")),
    "text_classifier_padded": ModelConfig("encoder", core(), text(), CLASSIFY),
    "seq2seq_padded": ModelConfig("encoder-decoder", core(), text("seq2seq_text")),
    "vit_patches": ModelConfig("encoder", core(), PartConfig("image_patches", {"image_size": 8, "patch_size": 4,
                                                                               "channels": 3}),
                               PartConfig("classification", {"n_classes": 3})),
    "vit_conv": ModelConfig("encoder", core(), PartConfig("image_conv", {"image_size": 8, "channels": 3}),
                            PartConfig("classification", {"n_classes": 3, "pool": "attention"})),
    "patchtst_forecaster": ModelConfig("encoder", core(norm="batchnorm", norm_first=False, residual_attention=True),
                                       PartConfig("series_patches", {"n_channels": 2, "input_len": 16,
                                                                     "patch_len": 4, "stride": 4}),
                                       PartConfig("forecast", {"horizon": 4})),
    "series_classifier": ModelConfig("encoder", core(), PartConfig("series_patches", {"n_channels": 2, "input_len": 16,
                                                                                      "patch_len": 4, "stride": 4}),
                                     CLASSIFY),
}


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    dynamo.reset()
    yield
    dynamo.reset()


def weighted_loss(model):
    """What the trainer back-propagates for one micro-batch (trainer.py: loss * loss_weight)."""
    def step(batch):
        out = model(batch)
        return out["loss"] * out["loss_weight"]
    return step


@pytest.mark.parametrize("name", list(MODELS))
def test_one_training_forward_is_one_graph(name):
    model = build_model(MODELS[name]).train()
    explained = dynamo.explain(weighted_loss(model))(batches()[name])
    reasons = [reason.reason.splitlines()[0] for reason in explained.break_reasons]
    assert (explained.graph_count, explained.graph_break_count, reasons) == (1, 0, [])


@pytest.mark.parametrize("name", ["gpt_left_padded", "seq2seq_padded"])
def test_text_batches_of_new_lengths_compile_once_more_then_not_again(name):
    """Padded text batches change length from batch to batch: after the first change torch.compile makes the
    length symbolic (one more graph), and no later length compiles again (with int(pos.max()) each did)."""
    model = build_model(MODELS[name]).train()
    step = torch.compile(weighted_loss(model), backend="eager")  # dynamo alone: no Inductor, seconds
    counters.clear()
    batch = batches()[name]  # every value (B, N)
    for n in (8, 6, 5, 7):
        step({key: value[:, :n] for key, value in batch.items()}).backward()
    assert sum(counters["graph_break"].values()) == 0
    assert counters["stats"]["unique_graphs"] == 2


def test_an_all_real_mask_trains_bit_for_bit_as_no_mask():
    """Positions by torch.where keep an unpadded batch on the no-mask arithmetic: the gradient of the learned
    positions is the sum over the batch, bit for bit (a per-row gather sums it in another order, which
    differed in the last bits at this batch size)."""
    def gradients(batch):
        torch.manual_seed(0)
        model = build_model(ModelConfig("decoder", core(), PartConfig("text", {"vocab_size": V,
                                                                               "max_positions": 128})))
        out = model(batch)
        out["loss"].backward()
        return [out["logits"]] + [p.grad for p in model.parameters()]

    ids = torch.randint(1, V, (64, 128))
    plain = {"input_ids": ids, "labels": torch.randint(0, V, (64, 128))}
    masked = gradients(plain | {"attention_mask": torch.ones(64, 128, dtype=torch.long)})
    for a, b in zip(gradients(plain), masked, strict=True):
        assert torch.equal(a, b)
