"""What a mutation audit of the interop and text code found no test pinned.

Untied heads of Hugging Face GPT-2 / BERT load as their own weights; a load with a tensor the model lacks is
refused; the config values an export writes (BERT's pad id, GPT-2's bos/eos) and the embedding LayerNorm's eps;
the lengths text items are cut to ([CLS] ... [SEP], NSP pairs, seq2seq sources); pad_collate's masks; the
refusals of init_from (another n_heads, another vocabulary of the same size) and its reading of the EMA weights;
a cased WordPiece vocabulary; a prompt longer than the window. Tiny models throughout: each test takes seconds.
"""
import json
import types

import pytest
import torch
import yaml
from safetensors.torch import save_file

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError, from_dict, to_dict
from xformer.data.registry import build_data
from xformer.data.text_classification import classification_ids
from xformer.data.text_common import pad_collate
from xformer.data.vocab import META_FILE, CharVocab, WordPieceVocab, load_vocab
from xformer.generation import generate_text
from xformer.interop.hf_checkpoint import load_exactly
from xformer.train.config import ExperimentConfig
from xformer.train.init_from import _check_same_model, _check_same_vocabulary, init_from_pretrained

transformers = pytest.importorskip("transformers")
from xformer.interop.hf_bert import bert_config_to_xformer, load_bert, xformer_config_to_bert  # noqa: E402
from xformer.interop.hf_gpt2 import load_gpt2, xformer_config_to_gpt2  # noqa: E402

TOL = 1e-4


# ---------------------------------------------------------------- Hugging Face interop


def test_an_untied_gpt2_loads_its_own_lm_head():
    """tie_word_embeddings=False: the logits come from lm_head, not from the word embedding (which differs)."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                     tie_word_embeddings=False)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        torch.nn.init.normal_(hf.lm_head.weight)
    assert not torch.equal(hf.lm_head.weight, hf.transformer.wte.weight)
    ours = load_gpt2(hf)
    ids = torch.randint(0, 50, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(ours({"input_ids": ids})["logits"], hf(ids).logits, atol=TOL, rtol=0)
    assert torch.equal(ours.head.proj.weight, hf.lm_head.weight)


def test_an_untied_bert_masked_lm_loads_its_own_decoder():
    """BertForMaskedLM with tie_word_embeddings=False: cls.predictions.decoder is its own weight."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, tie_word_embeddings=False)
    hf = transformers.BertForMaskedLM(config).eval()
    with torch.no_grad():
        torch.nn.init.normal_(hf.cls.predictions.decoder.weight)
    assert not torch.equal(hf.cls.predictions.decoder.weight, hf.bert.embeddings.word_embeddings.weight)
    ours = load_bert(hf)
    ids = torch.randint(1, 50, (2, 8))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        out = ours({"input_ids": ids, "attention_mask": mask.bool()})["logits"]
    torch.testing.assert_close(out, ref, atol=TOL, rtol=0)


def test_load_exactly_refuses_unexpected_keys():
    """A tensor the module has no place for is an error naming it, as a missing one is."""
    state = {"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}
    load_exactly(torch.nn.Linear(2, 2), state)  # exact: fine
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        load_exactly(torch.nn.Linear(2, 2), {**state, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"missing \['bias'\]"):
        load_exactly(torch.nn.Linear(2, 2), {"weight": torch.zeros(2, 2)})


def test_bert_embedding_layernorm_takes_the_config_eps():
    """layer_norm_eps reaches every LayerNorm, the embeddings' included (not a fixed 1e-5)."""
    bc = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, layer_norm_eps=1e-12)
    config = bert_config_to_xformer(bc)
    assert config.tokenizer.args["norm_eps"] == 1e-12
    model = build_model(config)
    eps = {name: m.eps for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    assert "tokenizer.norm" in eps and set(eps.values()) == {1e-12}, eps


def _bert(pad_id):
    tokenizer = {"vocab_size": 40, "max_positions": 16, "pad_id": pad_id}
    return ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, norm_first=False,
                                             final_norm=False),
                       PartConfig("bert_text", tokenizer), PartConfig("masked_lm"))


def test_exported_bert_pad_token_id_is_the_models_pad_id():
    assert xformer_config_to_bert(_bert(3)).pad_token_id == 3
    assert xformer_config_to_bert(_bert(None)).pad_token_id == 0  # none set: BERT's default


def test_exported_gpt2_bos_and_eos_default_to_the_last_id():
    """GPT-2's convention: <|endoftext|> is the last id (50256 of 50257) and is both bos and eos; extra
    arguments override it."""
    config = ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2),
                         PartConfig("text", {"vocab_size": 37, "max_positions": 16}), PartConfig("causal_lm"))
    hf = xformer_config_to_gpt2(config)
    assert (hf.bos_token_id, hf.eos_token_id) == (36, 36)
    assert xformer_config_to_gpt2(config, eos_token_id=5).eos_token_id == 5


# ---------------------------------------------------------------- text items and batches


def test_classification_ids_fit_max_length():
    vocab = types.SimpleNamespace(cls_id=2, sep_id=3)
    ids = classification_ids(vocab, list(range(10, 110)), 16)
    assert ids.tolist() == [2] + list(range(10, 24)) + [3]  # 16 ids: [CLS], the first 14, [SEP]
    assert classification_ids(vocab, [10, 11], 16).tolist() == [2, 10, 11, 3]


def test_pad_collate_masks_exactly_the_real_tokens():
    items = [{"src_ids": torch.tensor([5, 6]), "input_ids": torch.tensor([7, 8, 9]), "labels": torch.tensor([1])},
             {"src_ids": torch.tensor([5, 6, 7, 8]), "input_ids": torch.tensor([7]), "labels": torch.tensor([1, 2])}]
    batch = pad_collate(items, pad_id=0)
    assert batch["attention_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["src_mask"].tolist() == [[True, True, False, False], [True, True, True, True]]
    assert batch["input_ids"].tolist() == [[7, 8, 9], [7, 0, 0]]
    assert batch["labels"].tolist() == [[1, -100], [1, 2]]


def test_nsp_pairs_fit_an_even_max_length(tmp_path):
    """[CLS] A [SEP] B [SEP] with A and B at their full budget ((max_length - 3) // 2 each) fits max_length."""
    path = tmp_path / "long.txt"
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    # paragraphs of one sentence each, far longer than the budget: every segment is cut to the budget
    path.write_text("\n\n".join(" ".join(words[(i + k) % len(words)] for k in range(40)) for i in range(12)))
    for max_length in (8, 16):
        data = build_data("text_mlm", {"files": str(path), "tokenizer": "char", "max_length": max_length,
                                       "nsp": True, "document_chars": 100, "val_fraction": 0.25})
        lengths = [len(data.train[i]["input_ids"]) for i in range(len(data.train))]
        assert max(lengths) == 3 + 2 * ((max_length - 3) // 2) <= max_length, (max_length, lengths)


def test_an_over_long_seq2seq_source_keeps_its_first_tokens(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("abcdefghij\tdcba\n" * 8)
    data = build_data("text_seq2seq", {"files": str(path), "tokenizer": "char", "max_length": 4,
                                       "val_fraction": 0.25, "test_fraction": 0.0})
    vocab = load_vocab(_saved_tokenizer(data, tmp_path))
    item = data.train[0]
    assert item["src_ids"].tolist() == vocab.encode("abcd")
    assert item["labels"].tolist() == vocab.encode("dcba") + [vocab.eos_id]


def _saved_tokenizer(data, tmp_path):
    data.save(tmp_path / "run")
    return tmp_path / "run" / "tokenizer"


# ---------------------------------------------------------------- vocabularies


def test_a_cased_wordpiece_vocabulary_keeps_capitals_and_reloads_cased(tmp_path):
    lines = ["Hello World from Paris", "hello world from paris", "The Quick Brown Fox"] * 20
    vocab = WordPieceVocab.train(lines, vocab_size=200, min_frequency=1, lowercase=False)
    assert vocab.decode(vocab.encode("Hello World")) == "Hello World"
    assert vocab.encode("Hello") != vocab.encode("hello")
    folder = vocab.save(tmp_path / "a")
    loaded = load_vocab(folder)
    assert loaded.lowercase is False
    assert loaded.decode(loaded.encode("Hello World")) == "Hello World"
    again = loaded.save(tmp_path / "b")
    for name in ("tokenizer.json", "vocab.txt", META_FILE):
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name
    assert json.loads((again / META_FILE).read_text())["lowercase"] is False


# ---------------------------------------------------------------- init_from


TINY_CORE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32}


def _decoder_config(init_from=None, core=TINY_CORE):
    recipe = {"model": {"architecture": "decoder", "core": core, "tokenizer": {"name": "text", "args": {
              "vocab_size": 20, "max_positions": 8}}, "head": {"name": "causal_lm"}},
              "data": {"name": "text_lm", "args": {"tokenizer": "char", "block_size": 8}},
              "train": {"steps": 1, "batch_size": 2, "device": "cpu"}}
    if init_from is not None:
        recipe["init_from"] = str(init_from)
    return from_dict(ExperimentConfig, recipe)


def test_init_from_refuses_another_n_heads_at_the_same_width(tmp_path):
    """Another head count at the same d_model has tensors of the same shapes, yet another function."""
    run = tmp_path / "run"
    run.mkdir()
    theirs = _decoder_config(core={**TINY_CORE, "n_heads": 4})
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(theirs)))
    _check_same_model(_decoder_config(core={**TINY_CORE, "n_heads": 4}), run)  # the same: fine
    with pytest.raises(ConfigError, match=r"model\.core\.n_heads is 4 in the pre-trained run but 2 here"):
        _check_same_model(_decoder_config(), run)


def test_init_from_refuses_a_vocabulary_of_other_pieces_and_the_same_settings(tmp_path):
    """Same size, kind and casing (the description file equal) but other pieces (vocab.txt): the ids mean other
    things."""
    text = "the cat sat on the mat"
    rot13 = text.translate(str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm"))
    ours = WordPieceVocab.train([text] * 5, vocab_size=40, min_frequency=1)
    theirs = WordPieceVocab.train([rot13] * 5, vocab_size=40, min_frequency=1)
    data = types.SimpleNamespace(save=lambda folder: ours.save(folder / "tokenizer"))
    run = tmp_path / "run"
    ours.save(run / "tokenizer")
    _check_same_vocabulary(data, run)  # the same vocabulary: fine
    theirs.save(run / "tokenizer")
    mine = ours.save(tmp_path / "o")
    assert (run / "tokenizer" / META_FILE).read_bytes() == (mine / META_FILE).read_bytes()
    assert (run / "tokenizer" / "vocab.txt").read_bytes() != (mine / "vocab.txt").read_bytes()
    with pytest.raises(ConfigError, match="vocabulary differs"):
        _check_same_vocabulary(data, run)


def test_init_from_copies_the_ema_weights_when_the_checkpoint_has_them(tmp_path):
    """A checkpoint of a run with train.ema is evaluated with its moving average: init_from starts from it too."""
    config = _decoder_config()
    torch.manual_seed(0)
    trained = {k: v.clone() for k, v in build_model(config.model).state_dict().items()}
    ema = {k: v + 1.0 for k, v in trained.items()}
    ckpt = tmp_path / "step_00000001"
    ckpt.mkdir()
    for file, weights in (("model.safetensors", trained), ("ema.safetensors", ema)):
        save_file({k: v.contiguous() for k, v in weights.items() if k != "head.proj.weight"}, str(ckpt / file))
    (ckpt / "state.json").write_text(json.dumps({"files": {}}))
    model = build_model(config.model)
    summary = init_from_pretrained(model, _decoder_config(init_from=ckpt), None)
    assert "loaded" in summary
    own = model.state_dict()
    for name in ("tokenizer.embed.weight", "core.blocks.0.attn.qkv.weight", "core.norm.weight"):
        assert torch.equal(own[name], ema[name]), name


# ---------------------------------------------------------------- generation


def test_a_prompt_longer_than_the_window_continues_from_its_tail():
    """nanoGPT's crop: the last max_positions tokens of the prompt, not its first."""
    vocab = CharVocab("abcdefghij")
    torch.manual_seed(0)
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": 6}),
                                    PartConfig("causal_lm"))).eval()
    prompt = "abcdefghijjihg"
    tail, head = generate_text(model, vocab, prompt[-6:], 8), generate_text(model, vocab, prompt[:6], 8)
    assert tail != head  # the two crops continue differently: the test tells them apart
    assert generate_text(model, vocab, prompt, 8) == tail
