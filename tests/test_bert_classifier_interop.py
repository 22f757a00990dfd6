"""BERT sequence classifiers in and out: Hugging Face's ``BertForSequenceClassification`` ([CLS], the tanh
pooler, dropout, the classifier) is xformer's ``classification`` head with ``pool: cls, pooler: true``.

In: ``load_bert`` / ``load_pretrained`` give transformers' logits and loss; ``init_from: hf:FOLDER`` of a
classifier keeps its classifier, its rows following the classes by name (id2label against the data's
classes, Hugging Face's LABEL_i read as the label i); of a ``BertForPreTraining`` folder the classification
head starts from its pooler, as transformers' fine-tuning does. Out: ``xformer export --format hf`` of a
text classifier writes a ``BertForSequenceClassification`` named by the run's classes, whose logits,
tokenizer and pipeline labels are the run's. Nothing is downloaded: every model is built here.

"Before any training step": train.lr=1e-9 (two AdamW steps move each weight by about 2e-9)."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from xformer.cli import main

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TOL = 1e-4
TINY_TRAIN = {"steps": 2, "batch_size": 4, "lr": 1e-9, "warmup_steps": 0, "eval_every": 2, "log_every": 1}
WORDS = "the quick brown fox jumps over lazy dog a cat sees birds and sleeps in sun good bad film plot".split()


def _config(**overrides):
    return transformers.BertConfig(**{**dict(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=128,
                                             max_position_embeddings=32), **overrides})


def _batch():
    ids = torch.randint(1, 100, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 7:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _perturbed(model):
    with torch.no_grad():  # transformers zero-initialises biases: make every weight matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_sequence_classifier_logits_loss_and_export_match_hf(tmp_path):
    from xformer.interop.hf_bert import load_bert, save_bert
    from xformer.interop.pretrained import load_pretrained, load_source

    torch.manual_seed(0)
    names = {0: "negative", 1: "neutral", 2: "positive"}
    hf = _perturbed(transformers.BertForSequenceClassification(
        _config(id2label=names, label2id={v: k for k, v in names.items()}, classifier_dropout=0.3)))
    ours = load_bert(hf)
    assert ours.config.head.name == "classification"
    assert ours.config.head.args == {"n_classes": 3, "pool": "cls", "pooler": True, "dropout": 0.3}
    batch, labels = _batch(), torch.tensor([0, 2])
    with torch.no_grad():
        ref, out = hf(**batch, labels=labels), ours({**batch, "labels": labels})
        torch.testing.assert_close(out["logits"], ref.logits, atol=TOL, rtol=0)
        torch.testing.assert_close(out["loss"], ref.loss, atol=TOL, rtol=0)

        save_bert(ours, tmp_path / "back", id2label=names, label2id={v: k for k, v in names.items()})
        back = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "back").eval()
        torch.testing.assert_close(back(**batch).logits, ref.logits, atol=TOL, rtol=0)
        assert back.config.id2label == names

        hf.save_pretrained(tmp_path / "hf")  # a folder: the classes and the model with its own head
        assert load_source(f"hf:{tmp_path / 'hf'}").class_names == ["negative", "neutral", "positive"]
        model, _ = load_pretrained(tmp_path / "hf")
        torch.testing.assert_close(model(batch)["logits"], ref.logits, atol=TOL, rtol=0)


def test_default_label_names_are_the_labels_and_regression_is_refused():
    from xformer.interop.hf_bert import bert_config_to_xformer
    from xformer.interop.support import hf_class_names

    assert hf_class_names(_config(num_labels=3)) == ["0", "1", "2"]  # LABEL_0.. = the labels 0..
    assert hf_class_names(_config(id2label={0: "no", 1: "yes"})) == ["no", "yes"]
    assert hf_class_names({"id2label": {"0": "no", "1": "yes"}}) == ["no", "yes"]  # config.json's keys
    with pytest.raises(ValueError, match="regression"):
        bert_config_to_xformer(_config(num_labels=1, problem_type="regression"), "classification")


def test_pooler_is_tanh_of_a_linear_map_before_dropout_and_classifier():
    from xformer.core import CoreConfig
    from xformer.heads.classification import classification_head
    from xformer.tokenizers.bert import bert_tokenizer
    from xformer.tokens import Tokens, TokenState

    torch.manual_seed(0)
    core = CoreConfig(d_model=8, n_layers=1, n_heads=2)
    plain = classification_head(core, bert_tokenizer(core, vocab_size=20), n_classes=3)
    pooled = classification_head(core, bert_tokenizer(core, vocab_size=20), n_classes=3, pooler=True)
    assert sum(p.numel() for p in pooled.parameters()) - sum(p.numel() for p in plain.parameters()) == 8 * 8 + 8
    hidden = torch.randn(2, 5, 8)
    tokens = Tokens(hidden, state=TokenState(prefix_tokens=1, class_token=True))
    expect = pooled.fc(torch.tanh(hidden[:, 0] @ pooled.pooler.weight.T + pooled.pooler.bias))
    torch.testing.assert_close(pooled(hidden, tokens, {})["logits"], expect)


# ---------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A WordPiece tokenizer, a BERT sequence classifier whose id2label runs against the data's sorted classes
    (pos, neg), a BertForPreTraining folder, and a labelled CSV of two classes."""
    from tokenizers import BertWordPieceTokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bert_classifier")
    torch.manual_seed(0)
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + [f"##{c}" for c in "0123456789"]
    (root / "vocab.txt").write_text("\n".join(pieces) + "\n")
    tok = transformers.BertTokenizerFast(tokenizer_object=BertWordPieceTokenizer(
        str(root / "vocab.txt"), lowercase=True)._tokenizer)
    small = dict(vocab_size=len(pieces), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    classifier = _perturbed(transformers.BertForSequenceClassification(transformers.BertConfig(
        **small, id2label={0: "pos", 1: "neg"}, label2id={"pos": 0, "neg": 1})))
    pretraining = _perturbed(transformers.BertForPreTraining(transformers.BertConfig(**small)))
    for name, model in (("classifier", classifier), ("pretraining", pretraining)):
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    rows = [f"{'good film the plot' if i % 2 else 'bad film a dog sleeps'} {i},{'pos' if i % 2 else 'neg'}"
            for i in range(40)]
    (root / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    return {"root": root, "tok": tok, "classifier": classifier, "pretraining": pretraining}


def _recipe(root: Path, source: str, **head_args) -> str:
    recipe = {"init_from": f"hf:{root / source}",
              "model": {"architecture": "encoder", "head": {"name": "classification", "args": head_args}},
              "data": {"name": "text_classification",
                       "args": {"files": [str(root / "reviews.csv")], "max_length": 16, "val_fraction": 0.2,
                                "test_fraction": 0.2}},
              "train": TINY_TRAIN}
    path = root / f"{source}_{len(head_args)}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _run_model(run: Path):
    from xformer.train.run import load_run_model

    return load_run_model(run)[1]


def test_a_classifier_folder_fine_tunes_with_its_classifier_in_the_data_order(folders, capsys):
    root, tok, hf = folders["root"], folders["tok"], folders["classifier"]
    run = root / "from_classifier"
    assert main(["train", _recipe(root, "classifier"), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "left fresh: none" in out and "head.fc rows reordered from the checkpoint's class order" in out, out
    assert json.loads((run / "classes.json").read_text())["class_names"] == ["neg", "pos"]
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]["head"]["args"]
    assert saved["pooler"] is True and saved["pool"] == "cls"
    enc = tok(["good film the plot 3", "bad film a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = _run_model(run)(dict(enc))["logits"]
        torch.testing.assert_close(ours, hf(**enc).logits[:, [1, 0]], atol=TOL, rtol=0)  # neg, pos


def test_predict_reads_a_classifier_folder_itself(folders, capsys, tmp_path):
    """No run: the folder's tokenizer, id2label and classifier; transformers' probabilities."""
    root, tok, hf = folders["root"], folders["tok"], folders["classifier"]
    texts = ["good film the plot 3", "bad film a dog sleeps"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    assert main(["predict", str(root / "classifier"), str(tmp_path / "texts.txt"), "--top-k", "2"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    with torch.no_grad():
        probs = hf(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, p in zip(rows, probs):
        assert row["class_1"] == hf.config.id2label[int(p.argmax())]
        assert float(row["probability_1"]) == pytest.approx(p.max().item(), abs=1e-4)
    shutil.copytree(root / "classifier", tmp_path / "copy")  # another folder: the same one twice is refused first
    for argv, words in (
            # a BertForPreTraining folder is a masked LM: it fills the [MASK]s of texts (tests/test_predict_fill.py)
            (["predict", str(root / "pretraining"), str(tmp_path / "texts.txt")],
             ["has no [MASK]", f"{root / 'pretraining'} is a masked LM, which fills masks"]),
            (["predict", str(root / "classifier"), str(tmp_path / "texts.txt"), "--ensemble", str(tmp_path / "copy")],
             ["--ensemble averages runs"])):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and all(w in err for w in words), err


def test_evaluate_scores_a_recipe_s_starting_weights_as_transformers_does(folders, capsys):
    """xformer evaluate RECIPE.yaml (timm's validate.py --pretrained): the classifier folder's loss and accuracy on
    every row of the CSV, as transformers computes them, classes matched by name; nothing is written."""
    root, tok, hf = folders["root"], folders["tok"], folders["classifier"]
    recipe = _recipe(root, "classifier")
    before = sorted(p.name for p in root.iterdir())
    assert main(["evaluate", recipe, "data.args.val_fraction=0", "data.args.test_fraction=1"]) == 0
    out, err = capsys.readouterr()
    metrics = json.loads(out)
    assert "left fresh: none" in err and set(metrics) == {"test_loss", "test_accuracy", "test_macro_f1"}
    rows = list(csv.DictReader(io.StringIO((root / "reviews.csv").read_text())))
    enc = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=16, return_tensors="pt")
    labels = torch.tensor([hf.config.label2id[r["label"]] for r in rows])
    with torch.no_grad():
        logits = hf(**enc).logits
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(-1) == labels).float().mean().item()
    assert metrics["test_loss"] == pytest.approx(loss, abs=1e-4)
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert sorted(p.name for p in root.iterdir()) == before  # no run folder, nothing written

    # a pre-training folder gives no classifier: its score would be of random weights
    assert main(["evaluate", _recipe(root, "pretraining")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "fresh (head.fc.weight" in err and "random weights" in err, err
    assert main(["evaluate", recipe, str(root)]) == 2  # a recipe beside runs
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is a recipe: evaluate scores one recipe's starting weights alone" in err, err


def test_a_pretraining_folder_gives_the_classifier_its_pooler(folders, capsys):
    root, tok, hf = folders["root"], folders["tok"], folders["pretraining"]
    run = root / "from_pretraining"
    assert main(["train", _recipe(root, "pretraining"), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "left fresh: head.fc;" in out and "head.pooler" not in out, out  # the pooler is used
    enc = tok(["good film the plot 3", "bad film a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():  # the classifier reads transformers' pooled output
        model = _run_model(run)
        pooled = model.head.pooled(model.run_core(model.tokenizer(dict(enc))), model.tokenizer(dict(enc)))
        torch.testing.assert_close(pooled, hf.bert(**enc).pooler_output, atol=TOL, rtol=0)
    # a recipe may leave it out: [CLS] straight into the classifier
    assert main(["train", _recipe(root, "pretraining", pooler=False), "--out", str(root / "no_pooler"),
                 "--quiet"]) == 0
    assert "head.pooler" in capsys.readouterr().out.split("not used from the checkpoint:")[1]
    assert _run_model(root / "no_pooler").head.pooler is None
    # ... and then has no Hugging Face class to go to
    assert main(["export", str(root / "no_pooler"), "--format", "hf", "--out", str(root / "refused")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pooler=true" in err and not (root / "refused").exists(), err


def test_a_text_classifier_exports_as_bert_for_sequence_classification(folders, capsys):
    root, tok = folders["root"], folders["tok"]
    run = root / "from_classifier_export"
    recipe = _recipe(root, "classifier")
    assert main(["train", recipe, "train.lr=3e-4", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    out = root / "exported"
    assert main(["export", str(run), "--format", "hf", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["class"] == "BertForSequenceClassification"
    back = transformers.BertForSequenceClassification.from_pretrained(out).eval()
    assert back.config.id2label == {0: "neg", 1: "pos"} and back.config.label2id == {"neg": 0, "pos": 1}
    assert back.config.classifier_dropout == 0.1  # the run's head dropout (the source folder's hidden dropout)
    fast = transformers.AutoTokenizer.from_pretrained(out)
    texts = ["good film the plot 7", "bad film a dog sleeps"]
    enc = fast(texts, padding=True, return_tensors="pt")
    assert enc["input_ids"].tolist() == tok(texts, padding=True)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(back(**enc).logits, _run_model(run)(dict(enc))["logits"], atol=TOL, rtol=0)
    # transformers' own pipeline names the run's classes
    pipe = transformers.pipeline("text-classification", model=back, tokenizer=fast)
    assert {p["label"] for p in pipe(texts)} <= {"neg", "pos"}


def test_a_vit_with_a_pooler_is_refused_by_the_timm_export():
    """timm's VisionTransformer has no pre-logits layer: a ViT classifier with one goes to ONNX, not timm."""
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport
    from xformer.models import ModelConfig, PartConfig, build_model
    from xformer.core import CoreConfig

    config = ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, norm_eps=1e-6),
                         PartConfig("image_patches", {"image_size": 8, "patch_size": 4, "channels": 1}),
                         PartConfig("classification", {"n_classes": 3, "pooler": True}))
    with pytest.raises(CannotExport, match="a pooler before the classifier .*; use --format onnx"):
        check_exportable(build_model(config), "timm")
