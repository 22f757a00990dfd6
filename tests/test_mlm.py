"""BERT-side parts: the 15% / 80-10-10 masking rule, the bert_text tokenizer, the masked-LM heads, text metrics."""
import math

import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.data.mlm import mask_tokens
from xformer.metrics_text import bits_per_character, masked_lm_accuracy, perplexity

MASK, CLS, SEP, PAD, VOCAB = 1, 2, 3, 0, 1000


def test_mask_tokens_follows_15_80_10_10():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, VOCAB, (200, 500), generator=g)
    ids[:, 0], ids[:, -1], ids[:50, -100:] = CLS, SEP, PAD
    inputs, labels = mask_tokens(ids, MASK, VOCAB, special_ids=(CLS, SEP, PAD), generator=g)
    special = (ids == CLS) | (ids == SEP) | (ids == PAD)
    chosen = labels != -100
    assert not chosen[special].any()  # special tokens are never targets
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])  # only chosen tokens change
    n = chosen.sum().item()
    # ~95k candidate tokens: binomial std of each proportion is < 0.2 %, so 3 sigma bounds
    assert abs(n / (~special).sum().item() - 0.15) < 0.004
    masked = (inputs[chosen] == MASK).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    replaced = 1 - masked - kept
    assert abs(masked - 0.8) < 0.01
    assert abs(kept - 0.1 - 1 / VOCAB * 0.1) < 0.008  # a random replacement can hit the same id
    assert abs(replaced - 0.1) < 0.008


def test_mask_tokens_is_reproducible_and_leaves_ids_alone():
    ids = torch.randint(10, VOCAB, (4, 64))
    copy = ids.clone()
    a = mask_tokens(ids, MASK, VOCAB, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, MASK, VOCAB, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(ids, copy)


def _bert(head="masked_lm"):
    core = CoreConfig(d_model=32, n_layers=2, n_heads=4, norm_first=False, final_norm=False, norm_eps=1e-12)
    return build_model(ModelConfig("encoder", core, PartConfig("bert_text", {"vocab_size": 50, "max_positions": 16}),
                                   PartConfig(head)))


def test_bert_text_adds_token_types_and_normalises():
    model = _bert()
    ids = torch.randint(4, 50, (2, 8))
    types = torch.zeros_like(ids)
    types[:, 4:] = 1
    a, b = model.tokenizer({"input_ids": ids}), model.tokenizer({"input_ids": ids, "token_type_ids": types})
    assert torch.allclose(a.x[:, :4], b.x[:, :4]) and not torch.allclose(a.x[:, 4:], b.x[:, 4:])
    torch.testing.assert_close(a.x.mean(-1), torch.zeros(2, 8), atol=1e-5, rtol=0)  # LayerNorm, gamma 1 beta 0
    with pytest.raises(ValueError, match="longer than"):
        model.tokenizer({"input_ids": torch.zeros(1, 17, dtype=torch.long)})


def test_masked_lm_loss_only_on_labelled_positions_and_nsp():
    model = _bert("masked_lm_nsp")
    assert model.head.decoder.weight is model.tokenizer.embed.weight
    ids = torch.randint(4, 50, (3, 10))
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    out = model({"input_ids": ids, "labels": labels})
    expected = torch.nn.functional.cross_entropy(out["logits"][:, 2], ids[:, 2])
    torch.testing.assert_close(out["loss"], expected)
    assert out["loss_weight"].item() == 3 and out["nsp_logits"].shape == (3, 2)
    out2 = model({"input_ids": ids, "labels": labels, "next_sentence_label": torch.tensor([0, 1, 1])})
    nsp = torch.nn.functional.cross_entropy(out["nsp_logits"], torch.tensor([0, 1, 1]))
    torch.testing.assert_close(out2["loss"], expected + nsp)
    out2["loss"].backward()


def test_text_metrics():
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert perplexity(1e6) == float("inf")
    # 10 tokens of 2 nats each over 40 characters = 20 nats / 40 chars = 0.5 nats/char
    assert bits_per_character(2.0, n_tokens=10, n_chars=40) == pytest.approx(0.5 / math.log(2))
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])
    acc, n = masked_lm_accuracy(logits, torch.tensor([[1, 1, -100]]))
    assert (acc, n) == (0.5, 2)
