"""Text datasets over real text (text_mlm, text_classification, text_seq2seq) and fine-tuning with init_from."""
import math
import shutil

import pytest
import yaml
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError, from_dict
from xformer.data.corpus import default_corpus
from xformer.data.registry import build_data
from xformer.data.text_tasks import _generator, acceptability, documents, label_names, macro_f1, split_indices
from xformer.data.vocab import WordPieceVocab, load_vocab
from xformer.train.checkpoint import checkpoint_dir, read_weights
from xformer.train.config import ExperimentConfig
from xformer.train.distributed import World
from xformer.train.run import build, init_from_pretrained, load_run, train_run
from xformer.train.trainer import Trainer

CORPUS = default_corpus()
TINY_CORE = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "norm_first": False, "final_norm": False,
             "norm_eps": 1e-12}


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """The first ~60k characters of the bundled manual: real text, small enough for fast builds."""
    path = tmp_path_factory.mktemp("text") / "manual.txt"
    path.write_text(CORPUS[:60_000])
    return path


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    """One small WordPiece vocabulary for every test (training one per test would dominate the time)."""
    return WordPieceVocab.train(CORPUS.splitlines(), vocab_size=500).save(tmp_path_factory.mktemp("vocab"))


def trainer(recipe: dict) -> Trainer:
    config = from_dict(ExperimentConfig, recipe)
    model, data = build(config)
    return Trainer(model, data, config.train, None, World())


def ids_text(ids) -> str:
    return " " + " ".join(map(str, ids)) + " "


# ---------------------------------------------------------------- text_mlm


def test_mlm_items_and_dynamic_masking_follow_bert(text_file, vocab_dir):
    data = build_data("text_mlm", {"files": str(text_file), "tokenizer": str(vocab_dir), "max_length": 32})
    vocab = load_vocab(vocab_dir)
    items = [data.train[i] for i in range(len(data.train))]
    assert all(it["input_ids"][0] == vocab.cls_id and it["input_ids"][-1] == vocab.sep_id for it in items)
    assert max(len(it["input_ids"]) for it in items) <= 32
    special = torch.tensor(vocab.special_ids)
    chosen = candidates = 0
    batches = [data.collate(items) for _ in range(5)]  # 5 fresh masks of every training item
    for batch in batches:
        original = torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])
        targets = batch["labels"] != -100
        is_special = torch.isin(original, special)
        assert not (targets & is_special).any()  # [CLS], [SEP], [PAD] are never targets
        assert ((original == vocab.pad_id) == ~batch["attention_mask"]).all()
        chosen, candidates = chosen + int(targets.sum()), candidates + int((~is_special).sum())
    p = chosen / candidates  # ~15%, within 4 binomial standard deviations
    assert abs(p - 0.15) < 4 * math.sqrt(0.15 * 0.85 / candidates), p
    assert not torch.equal(batches[0]["labels"], batches[1]["labels"])  # a new mask per batch


def test_nsp_pairs_are_balanced_and_next_pairs_are_consecutive(text_file, vocab_dir):
    args = {"files": str(text_file), "tokenizer": str(vocab_dir), "max_length": 48, "nsp": True, "seed": 3}
    data = build_data("text_mlm", args)
    vocab = load_vocab(vocab_dir)
    # the training documents' token streams, as the dataset cuts them
    docs = documents(CORPUS[:60_000], 2000)
    train_docs = split_indices(len(docs), 0.1, 0.0, _generator(3, 0))[0]
    streams = [ids_text(sum(vocab.encode_batch(docs[i]), [])) for i in train_docs]
    labels = torch.stack([data.train[i]["next_sentence_label"] for i in range(len(data.train))])
    n = len(labels)
    assert abs(labels.float().mean() - 0.5) < 4 * math.sqrt(0.25 / n)
    consecutive = []
    for i in range(n):
        item = data.train[i]
        ids, types = item["input_ids"].tolist(), item["token_type_ids"]
        first_sep = ids.index(vocab.sep_id)
        a, b = ids[1:first_sep], ids[first_sep + 1:-1]
        assert (types[: first_sep + 1] == 0).all() and (types[first_sep + 1:] == 1).all()
        consecutive.append(any(ids_text(a + b) in s for s in streams))
    consecutive = torch.tensor(consecutive)
    assert consecutive[labels == 0].all()  # "is next": B continues A in the text
    assert consecutive[labels == 1].float().mean() < 0.05  # "random": almost never a continuation


def test_validation_masks_are_fixed(text_file, vocab_dir):
    args = {"files": str(text_file), "tokenizer": str(vocab_dir), "max_length": 32, "val_fraction": 0.2}
    data, again = build_data("text_mlm", args), build_data("text_mlm", args)
    items = [data.val[i] for i in range(len(data.val))]
    first, second = data.collate(items), data.collate(items)
    rebuilt = again.collate([again.val[i] for i in range(len(again.val))])
    for key in ("input_ids", "labels"):
        assert torch.equal(first[key], second[key]) and torch.equal(first[key], rebuilt[key])
    assert (first["labels"] != -100).any()
    model = build_model(ModelConfig("encoder", CoreConfig(**TINY_CORE), PartConfig("bert_text", data.model_args["tokenizer"]),
                                    PartConfig("masked_lm")))
    loader = lambda: torch.utils.data.DataLoader(data.val, 8, collate_fn=data.collate)  # noqa: E731
    assert data.evaluate(model, loader()) == data.evaluate(model, loader())


def test_dynamic_masking_resumes_exactly(tmp_path, text_file, vocab_dir):
    """6 steps in one go == 3 steps, then --resume to 6: the train masks come from the checkpointed RNG."""
    def config(steps):
        return from_dict(ExperimentConfig, {
            "model": {"architecture": "encoder", "core": TINY_CORE, "tokenizer": {"name": "bert_text"},
                      "head": {"name": "masked_lm_nsp"}},
            "data": {"name": "text_mlm", "args": {"files": str(text_file), "tokenizer": str(vocab_dir),
                                                  "max_length": 32, "nsp": True}},
            "train": {"steps": steps, "batch_size": 8, "eval_every": 3, "eval_batches": 1, "schedule": "constant",
                      "device": "cpu"}})
    train_run(config(6), tmp_path / "a")
    train_run(config(3), tmp_path / "b")
    train_run(config(6), tmp_path / "b", resume=True)
    a, b = (read_weights(checkpoint_dir(tmp_path / run / "checkpoints")) for run in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_mlm_loss_drops(text_file, vocab_dir):
    t = trainer({"model": {"architecture": "encoder", "core": TINY_CORE, "tokenizer": {"name": "bert_text"},
                           "head": {"name": "masked_lm"}},
                 "data": {"name": "text_mlm", "args": {"files": str(text_file), "tokenizer": str(vocab_dir),
                                                       "max_length": 32}},
                 "train": {"steps": 40, "batch_size": 16, "lr": 3e-3, "eval_every": 1000, "device": "cpu"}})
    before = t.evaluate("val")
    t.fit()
    after = t.evaluate("val")
    assert after["loss"] < before["loss"] - 0.4, (before, after)
    assert after["mlm_accuracy"] > before["mlm_accuracy"]


# ---------------------------------------------------------------- text_classification


def test_csv_and_tsv_are_read_with_sorted_labels_and_stratified(tmp_path, vocab_dir):
    csv_file, tsv_file = tmp_path / "a.csv", tmp_path / "b.tsv"
    csv_file.write_text('text,label\n"good, really good",pos\nbad,neg\n' + "fine,pos\nawful,neg\n" * 9)
    tsv_file.write_text('label\ttext\npos\t"quoted" text\n' + "neg\tpoor\n" * 9)
    data = build_data("text_classification", {"files": [str(csv_file), str(tsv_file)], "tokenizer": str(vocab_dir),
                                              "val_fraction": 0.2, "test_fraction": 0.2})
    assert data.model_args["head"] == {"n_classes": 2}
    splits = [[int(s[i]["labels"]) for i in range(len(s))] for s in (data.train, data.val, data.test)]
    assert sum(map(len, splits)) == 30
    # neg (19 rows) -> 0, pos (11 rows) -> 1; each label split 60/20/20
    assert [sorted(s).count(0) for s in splits] == [11, 4, 4] and [s.count(1) for s in splits] == [7, 2, 2]
    vocab = load_vocab(vocab_dir)
    texts = [vocab.decode(s[i]["input_ids"].tolist()) for s in (data.train, data.val, data.test) for i in range(len(s))]
    assert "good, really good" in texts and '" quoted " text' in texts  # a quoted comma; TSV quotes kept
    assert label_names(["10", "2", "1"]) == ["1", "2", "10"] and label_names(["pos", "neg"]) == ["neg", "pos"]


def test_a_file_without_the_label_column_is_a_one_line_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("sentence,label\nhello,1\n")
    with pytest.raises(ConfigError, match=r"has no column 'text' \(its header: sentence, label\)") as e:
        build_data("text_classification", {"files": str(path)})
    assert "\n" not in str(e.value)


def test_default_acceptability_task_is_balanced_and_only_word_order_differs(vocab_dir):
    parts = acceptability(CORPUS, 0.1, 0.1, seed=0, min_words=6, max_words=30)
    for texts, labels in parts:
        assert labels.count(0) == labels.count(1) > 0
        for real, shuffled in zip(texts[::2], texts[1::2]):  # pairs share a split
            words = lambda s: sorted(w.lower() for w in s[:-1].split())  # noqa: E731
            assert words(real) == words(shuffled) and real != shuffled and shuffled.endswith(".")
    real = [set(texts[::2]) for texts, _ in parts]
    assert not (real[0] & real[1]) and not (real[0] & real[2])  # no sentence in two splits
    data = build_data("text_classification", {"tokenizer": str(vocab_dir)})
    labels = torch.stack([data.train[i]["labels"] for i in range(len(data.train))])
    assert labels.float().mean() == 0.5 and len(labels) > 2000
    assert data.train[0]["input_ids"][0] == load_vocab(vocab_dir).cls_id


def test_macro_f1_is_sklearns():
    from sklearn.metrics import f1_score

    y_true, y_pred = torch.randint(0, 4, (200,)), torch.randint(0, 3, (200,))
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_cls_pooling_works_and_mean_pooling_ignores_padding():
    for pool in ("cls", "mean"):
        model = build_model(ModelConfig("encoder", CoreConfig(**TINY_CORE),
                                        PartConfig("bert_text", {"vocab_size": 50, "pad_id": 0}),
                                        PartConfig("classification", {"n_classes": 3, "pool": pool}))).eval()
        ids = torch.randint(7, 50, (2, 6))
        padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], 1)
        mask = torch.arange(9)[None] < 6
        a = model({"input_ids": ids})["logits"]
        b = model({"input_ids": padded, "attention_mask": mask.expand(2, -1)})["logits"]
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_tiny_classifier_learns(tmp_path, vocab_dir):
    """Label 1 when the text holds "class", among real corpus words."""
    g = torch.Generator().manual_seed(0)
    words = [w for w in CORPUS[:20_000].lower().split() if w.isalpha() and w != "class"]
    rows = []
    for _ in range(400):
        text = [words[i] for i in torch.randint(len(words), (8,), generator=g)]
        label = int(torch.rand((), generator=g) < 0.5)
        if label:
            text[int(torch.randint(8, (), generator=g))] = "class"
        rows.append(f"{' '.join(text)},{label}\n")
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(rows))
    t = trainer({"model": {"architecture": "encoder", "core": TINY_CORE, "tokenizer": {"name": "bert_text"},
                           "head": {"name": "classification", "args": {"pool": "cls"}}},
                 "data": {"name": "text_classification", "args": {"files": str(tmp_path / "d.csv"),
                                                                  "tokenizer": str(vocab_dir)}},
                 "train": {"steps": 60, "batch_size": 16, "lr": 3e-3, "eval_every": 1000, "device": "cpu"}})
    t.fit()
    metrics = t.evaluate("test")
    assert metrics["accuracy"] > 0.85 and metrics["macro_f1"] > 0.85, metrics


# ---------------------------------------------------------------- text_seq2seq


def test_seq2seq_items_and_tsv_errors(tmp_path, vocab_dir):
    path = tmp_path / "pairs.tsv"
    path.write_text("the value\tvalue the\n\na b c\tc b a\n" * 10)
    data = build_data("text_seq2seq", {"files": str(path), "tokenizer": str(vocab_dir)})
    vocab = load_vocab(vocab_dir)
    item = data.train[0]
    assert item["input_ids"][0] == vocab.bos_id and item["labels"][-1] == vocab.eos_id
    assert torch.equal(item["input_ids"][1:], item["labels"][:-1])
    assert vocab.bos_id not in item["src_ids"] and vocab.eos_id not in item["src_ids"]
    batch = data.collate([data.train[i] for i in range(4)])
    assert set(batch) == {"src_ids", "src_mask", "input_ids", "attention_mask", "labels"}
    path.write_text("no tab here\n")
    with pytest.raises(ConfigError, match="pairs.tsv:1: no tab"):
        build_data("text_seq2seq", {"files": str(path), "tokenizer": str(vocab_dir)})


def test_tiny_seq2seq_learns_word_reversal(vocab_dir):
    """The default task on 3-word pieces; copying [EOS] and frequent pieces alone scores about 0.25."""
    t = trainer({"model": {"architecture": "encoder-decoder", "core": {"d_model": 64, "n_layers": 1, "n_heads": 4,
                                                                       "d_ff": 128},
                           "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
                 "data": {"name": "text_seq2seq", "args": {"tokenizer": str(vocab_dir), "max_words": 3,
                                                           "min_words": 3}},
                 "train": {"steps": 400, "batch_size": 64, "lr": 3e-3, "warmup_steps": 20, "eval_every": 1000,
                           "eval_batches": 4, "device": "cpu"}})
    t.fit()
    metrics = t.evaluate("test")
    assert metrics["token_accuracy"] > 0.5 and metrics["exact_match"] > 0.2, metrics  # chance: 1 / 500 per token


# ---------------------------------------------------------------- init_from


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory, text_file, vocab_dir):
    run = tmp_path_factory.mktemp("runs") / "mlm"
    config = from_dict(ExperimentConfig, {
        "model": {"architecture": "encoder", "core": TINY_CORE, "tokenizer": {"name": "bert_text"},
                  "head": {"name": "masked_lm"}},
        "data": {"name": "text_mlm", "args": {"files": str(text_file), "tokenizer": str(vocab_dir), "max_length": 32}},
        "train": {"steps": 2, "batch_size": 8, "eval_every": 2, "device": "cpu"}})
    train_run(config, run)
    return run


def classifier_config(run, **changes) -> ExperimentConfig:
    recipe = {"model": {"architecture": "encoder", "core": TINY_CORE, "tokenizer": {"name": "bert_text"},
                        "head": {"name": "classification", "args": {"pool": "cls"}}},
              "data": {"name": "text_classification", "args": {"tokenizer": str(run / "tokenizer"), "max_length": 32,
                                                               "max_words": 12}},
              "train": {"steps": 1, "batch_size": 8, "eval_every": 1, "eval_batches": 1, "device": "cpu"},
              "init_from": str(run)}
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        (recipe["data"]["args"] if section == "data" else recipe[section])[leaf] = value
    return from_dict(ExperimentConfig, recipe)


def test_init_from_copies_the_encoder_and_leaves_the_head_fresh(mlm_run, tmp_path):
    config = classifier_config(mlm_run)
    model, data = build(config)
    fresh_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    summary = init_from_pretrained(model, config, data)
    weights = read_weights(checkpoint_dir(mlm_run / "checkpoints", "best"))
    own = model.state_dict()
    encoder = [k for k in own if k.startswith(("tokenizer.", "core."))]
    assert encoder and all(torch.equal(own[k], weights[k]) for k in encoder)
    assert all(torch.equal(model.head.state_dict()[k], v) for k, v in fresh_head.items())
    assert f"loaded {len(encoder)} of {len(own)} tensors; left fresh: head.fc;" in summary and "\n" not in summary

    # load_run reads the run's own checkpoint and tokenizer: the pre-trained run may be gone
    shutil.copytree(mlm_run, tmp_path / "mlm")
    config = classifier_config(tmp_path / "mlm")
    train_run(config, tmp_path / "cls")
    shutil.rmtree(tmp_path / "mlm")
    _, reloaded, _ = load_run(tmp_path / "cls")
    saved = read_weights(checkpoint_dir(tmp_path / "cls" / "checkpoints", "best"))
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in saved.items())
    assert not torch.equal(saved["head.fc.weight"], fresh_head["fc.weight"])  # it trained


def init(config):
    model, data = build(config)
    return init_from_pretrained(model, config, data)


def test_init_from_rejects_another_vocabulary_or_architecture(mlm_run):
    with pytest.raises(ConfigError, match=r"vocabulary differs .*; pass data.args.tokenizer=.*tokenizer$"):
        init(classifier_config(mlm_run, **{"data.tokenizer": "wordpiece", "data.vocab_size": 300}))
    config = classifier_config(mlm_run)
    config.model.tokenizer.args["vocab_size"] = 600  # same vocabulary files, another embedding shape
    with pytest.raises(ConfigError, match=r"tokenizer.embed.weight is \(500, 32\) there but \(600, 32\) .*"
                                          "data.args.tokenizer"):
        init(config)
    with pytest.raises(ConfigError, match="model.architecture is 'encoder' in the pre-trained run but 'decoder'"):
        init(classifier_config(mlm_run, **{"model.architecture": "decoder"}))
    with pytest.raises(ConfigError, match="model.core.norm_first is False in the pre-trained run but True"):
        init(classifier_config(mlm_run, **{"model.core": {**TINY_CORE, "norm_first": True}}))


def test_generate_prints_an_encoder_decoders_output_alone(vocab_dir, tmp_path, capsys):
    """A decoder continues its prompt, so the prompt is printed before the new text; an encoder-decoder's output
    is a target of its own (the prompt is its source), printed without the source glued to its front."""
    from xformer.cli import main

    spec = {"model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2,
                                                                  "d_ff": 32},
                      "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
            "data": {"name": "text_seq2seq", "args": {"tokenizer": str(vocab_dir), "max_words": 3, "min_words": 3}},
            "train": {"steps": 2, "batch_size": 8, "eval_every": 2, "eval_batches": 1}}
    recipe = tmp_path / "s2s.yaml"
    recipe.write_text(yaml.safe_dump(spec))
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    prompt = "SOURCE-SENTENCE-MARKER"
    assert main(["generate", str(tmp_path / "run"), "--prompt", prompt, "--greedy", "--max-new-tokens", "4"]) == 0
    assert prompt not in capsys.readouterr().out
