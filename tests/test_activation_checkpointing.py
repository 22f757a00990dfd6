"""train.activation_checkpointing: the blocks keep only their inputs for backward and recompute the rest, so the
gradients are the plain model's (dropout and drop path replayed), the tensors saved for backward shrink, and a
run trains to the same losses; baselines and BatchNorm cores are refused in one line."""
import copy
import json
from pathlib import Path

import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.config import ConfigError
from xformer.train.recompute import checkpoint_blocks

RECIPE = str(Path(__file__).resolve().parents[1] / "tasks" / "reverse.yaml")
CORE = dict(d_model=32, n_layers=3, n_heads=4, d_ff=64, dropout=0.1, attn_dropout=0.1, drop_path=0.1)


def models():
    text = PartConfig("text", {"vocab_size": 20, "max_positions": 16})
    yield "decoder", ModelConfig("decoder", CoreConfig(**CORE), text, PartConfig("causal_lm")), \
        {"input_ids": torch.randint(0, 20, (4, 16)), "labels": torch.randint(0, 20, (4, 16))}
    yield "encoder (ViT)", ModelConfig("encoder", CoreConfig(**CORE), PartConfig("image_patches", {
        "image_size": 8, "patch_size": 2, "channels": 1}), PartConfig("classification", {"n_classes": 3})), \
        {"images": torch.randn(4, 1, 8, 8), "labels": torch.randint(0, 3, (4,))}
    yield "encoder, residual attention", ModelConfig("encoder", CoreConfig(**CORE, residual_attention=True),
                                                     PartConfig("image_patches", {"image_size": 8, "patch_size": 2,
                                                                                  "channels": 1}),
                                                     PartConfig("classification", {"n_classes": 3})), \
        {"images": torch.randn(4, 1, 8, 8), "labels": torch.randint(0, 3, (4,))}


def saved_bytes(model, batch) -> tuple[torch.Tensor, dict, int]:
    """The loss, the gradients and the bytes of the tensors autograd kept for backward, from one seeded step."""
    kept = [0]

    def pack(t):
        kept[0] += t.numel() * t.element_size()
        return t

    model.zero_grad()
    torch.manual_seed(5)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(batch)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, kept[0]


@pytest.mark.parametrize("name, config, batch", list(models()), ids=lambda v: v if isinstance(v, str) else "")
def test_gradients_equal_the_plain_model_s_and_less_is_kept(name, config, batch):
    torch.manual_seed(0)
    plain = build_model(config).train()
    recomputed = copy.deepcopy(plain)
    assert checkpoint_blocks(recomputed) == 3 and checkpoint_blocks(recomputed) == 3  # twice: no second wrap
    loss, grads, plain_bytes = saved_bytes(plain, batch)
    loss2, grads2, recomputed_bytes = saved_bytes(recomputed, batch)
    assert torch.equal(loss, loss2)
    assert grads.keys() == grads2.keys() and len(grads) > 10
    for key in grads:
        torch.testing.assert_close(grads2[key], grads[key], rtol=1e-5, atol=1e-7, msg=key)
    assert recomputed_bytes < 0.5 * plain_bytes, (name, recomputed_bytes, plain_bytes)
    with torch.no_grad():  # no gradient: the blocks run as usual
        recomputed.eval(), plain.eval()
        torch.testing.assert_close(recomputed(batch)["logits"], plain(batch)["logits"])


def test_a_run_trains_to_the_same_losses_and_weights(tmp_path, capsys):
    tiny = [RECIPE, "train.steps=12", "train.log_every=2", "train.eval_every=6", "data.args.n_train=640",
            "data.args.n_val=64", "data.args.n_test=64", "model.core.dropout=0.1", "--quiet"]
    assert main(["train", *tiny, "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", *tiny, "train.activation_checkpointing=true", "--out", str(tmp_path / "recomputed")]) == 0
    capsys.readouterr()
    logs = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("plain", "recomputed")]
    for a, b in zip(*logs):
        assert a.keys() == b.keys()
        for key in a:
            if key != "examples_per_second":
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key
    from xformer.train.run import load_run_model

    for (name, p), (_, q) in zip(load_run_model(tmp_path / "plain")[1].named_parameters(),
                                 load_run_model(tmp_path / "recomputed")[1].named_parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6, msg=name)


def test_baselines_and_batchnorm_cores_are_refused(tmp_path, capsys):
    patchtst = build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, norm="batchnorm"),
                                       PartConfig("series_patches", {"n_channels": 1, "input_len": 32,
                                                                     "patch_len": 8, "stride": 8}),
                                       PartConfig("forecast", {"horizon": 4})))
    with pytest.raises(ConfigError, match="BatchNorm in the blocks"):
        checkpoint_blocks(patchtst)
    assert main(["train", str(Path(RECIPE).parent / "cnn_digits.yaml"), "train.steps=2",
                 "train.activation_checkpointing=true", "--out", str(tmp_path / "cnn"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has none (a baseline)" in err, err
