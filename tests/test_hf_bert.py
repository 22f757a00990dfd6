"""BERT interop: BertModel / BertForMaskedLM / BertForPreTraining weights give the same outputs in xformer."""
import pytest
import torch

transformers = pytest.importorskip("transformers")
from xformer.interop.hf_bert import bert_config_to_xformer, load_bert, save_bert, xformer_config_to_bert  # noqa: E402

TOL = 1e-4


def _config(**overrides):
    return transformers.BertConfig(**{**dict(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=128,
                                             max_position_embeddings=32), **overrides})


def _batch():
    """Two right-padded sentence pairs with segments A (0) and B (1)."""
    ids = torch.randint(1, 100, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 7:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def test_bert_model_hidden_states_and_pooler_match_hf():
    torch.manual_seed(0)
    hf = transformers.BertModel(_config()).eval()
    with pytest.warns(UserWarning, match="no weights for"):  # a bare encoder has no MLM / NSP weights
        ours = load_bert(hf)
    batch = _batch()
    with torch.no_grad():
        ref, out = hf(**batch), ours(batch)
    # every position, padding included: both mask only keys
    torch.testing.assert_close(out["hidden_states"], ref.last_hidden_state, atol=TOL, rtol=0)
    torch.testing.assert_close(out["pooled"], ref.pooler_output, atol=TOL, rtol=0)


def test_masked_lm_logits_and_loss_match_hf():
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(_config(hidden_act="gelu")).eval()
    ours = load_bert(hf)
    assert ours.config.head.name == "masked_lm" and ours.config.core.norm_first is False
    batch = _batch()
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, [1, 3]] = batch["input_ids"][:, [1, 3]]
    with torch.no_grad():
        ref, out = hf(**batch, labels=labels), ours({**batch, "labels": labels})
    torch.testing.assert_close(out["logits"], ref.logits, atol=TOL, rtol=0)
    torch.testing.assert_close(out["loss"], ref.loss, atol=TOL, rtol=0)
    assert ours.head.decoder.weight is ours.tokenizer.embed.weight  # tied


def test_pretraining_heads_match_hf_and_export_loads_in_transformers(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForPreTraining(_config()).eval()
    hf.save_pretrained(tmp_path / "hf")
    ours = load_bert(tmp_path / "hf")
    assert ours.config.head.name == "masked_lm_nsp"
    batch = _batch()
    labels = torch.where(torch.rand(2, 10) < 0.3, batch["input_ids"], -100)
    nsp = torch.tensor([0, 1])
    with torch.no_grad():
        ref = hf(**batch, labels=labels, next_sentence_label=nsp)
        out = ours({**batch, "labels": labels, "next_sentence_label": nsp})
        torch.testing.assert_close(out["logits"], ref.prediction_logits, atol=TOL, rtol=0)
        torch.testing.assert_close(out["nsp_logits"], ref.seq_relationship_logits, atol=TOL, rtol=0)
        torch.testing.assert_close(out["loss"], ref.loss, atol=TOL, rtol=0)
        save_bert(ours, tmp_path / "xformer")
        back = transformers.BertForPreTraining.from_pretrained(tmp_path / "xformer").eval()
        torch.testing.assert_close(back(**batch).prediction_logits, ref.prediction_logits, atol=TOL, rtol=0)


def test_masked_lm_export_from_xformer_loads_in_transformers(tmp_path):
    torch.manual_seed(0)
    ours = load_bert(transformers.BertForMaskedLM(_config()))
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_bert(ours, tmp_path)
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    batch = _batch()
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits, ours(batch)["logits"], atol=TOL, rtol=0)


def test_config_round_trip():
    hf_config = _config(layer_norm_eps=1e-7, type_vocab_size=3)
    ours = bert_config_to_xformer(hf_config)
    assert (ours.core.norm_first, ours.core.has_final_norm, ours.core.norm_eps) == (False, False, 1e-7)
    back = xformer_config_to_bert(ours)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_act"):
        assert getattr(back, key) == getattr(hf_config, key), key
