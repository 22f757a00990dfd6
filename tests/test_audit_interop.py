"""Audit of the Hugging Face interop as a transformers user meets it: folders that are not what xformer reads
as they stand (a token or multiple-choice classifier, no tokenizer, a tokenizer or a config.json that is not
the weights') end in one line with exit status 2 from `xformer predict` / `generate` / `train --init-from`,
never in a traceback, and never load silently wrong. Every folder is built here, tiny, random init."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch


transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "quick", "brown", "fox", "cat", "sleeps", "."]


def bert_config(**extra):
    return transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=32, **extra)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """bert_cls (a BertForSequenceClassification with its tokenizer); tok_cls / choice (token and multiple-choice
    classifiers, 3 labels); gpt2 (a GPT2LMHeadModel with a byte-level BPE tokenizer)."""
    from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("audit_interop")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizerFast(tokenizer_object=BertWordPieceTokenizer(str(root / "vocab.txt"))._tokenizer)
    for name, cls, extra in (("bert_cls", transformers.BertForSequenceClassification, {"num_labels": 2}),
                             ("tok_cls", transformers.BertForTokenClassification, {"num_labels": 3}),
                             ("choice", transformers.BertForMultipleChoice, {"num_labels": 3})):
        cls(bert_config(**extra)).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the quick brown fox sleeps"] * 4, vocab_size=280, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    gpt2_tok = transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=len(gpt2_tok), n_positions=16, n_embd=16,
                                                         n_layer=1, n_head=2)).save_pretrained(root / "gpt2")
    gpt2_tok.save_pretrained(root / "gpt2")
    return root


def copy(root: Path, name: str, new: str) -> Path:
    shutil.rmtree(root / new, ignore_errors=True)
    return Path(shutil.copytree(root / name, root / new))


@pytest.mark.parametrize("name", ["tok_cls", "choice"])
def test_token_and_choice_classifiers_are_not_read_as_sequence_classifiers(root, name, monkeypatch, cli_error):
    """Their `classifier` scores tokens / choices: predict refuses the folder in one line (was a traceback), and
    the encoder alone is the starting point (the classifier is never taken for the pooled [CLS]'s)."""
    from xformer.interop.pretrained import load_pretrained

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    cli_error(["predict", str(root / name), "-"], "without a classifier")
    model, _ = load_pretrained(f"hf:{root / name}")
    assert model.config.head.name != "classification"


def test_a_classifier_folder_without_tokenizer_files_is_refused_by_predict(root, monkeypatch, cli_error):
    """As init_from and generate refuse it (was AttributeError: 'NoneType' object has no attribute 'encode_batch')."""
    folder = copy(root, "bert_cls", "no_tokenizer")
    for file in folder.glob("tokenizer*"):
        file.unlink()
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    cli_error(["predict", str(folder), "-"], "holds no tokenizer", "save_pretrained")


def test_a_tokenizer_beyond_the_models_vocabulary_is_refused(root, monkeypatch, cli_error):
    """Tokenizer files of another model (ids past config.json's vocab_size) were an IndexError in the embedding."""
    small = copy(root, "bert_cls", "bert_small_vocab")
    config = json.loads((small / "config.json").read_text())
    (small / "config.json").write_text(json.dumps({**config, "vocab_size": 8}))
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(transformers.BertConfig.from_pretrained(small)).save_pretrained(small)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    cli_error(["predict", str(small), "-"], "vocab_size", "is 8", "tokenizer")

    gpt2 = copy(root, "gpt2", "gpt2_small_vocab")
    transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1,
                                                         n_head=2)).save_pretrained(gpt2)
    cli_error(["generate", str(gpt2), "--prompt", "the fox", "--greedy", "--max-new-tokens", "2"],
              "vocab_size", "is 50")


@pytest.mark.parametrize("edit, words", [({"hidden_size": 32}, ["config.json makes", "(13, 16)"]),
                                         ({"intermediate_size": 64}, ["mlp.fc1.weight", "(32, 16)"]),
                                         ({"num_hidden_layers": 1}, ["the weights hold 2 layers", "says 1"])])
def test_a_config_json_that_is_not_the_weights_is_refused(root, edit, words, monkeypatch, cli_error):
    """A config.json edited (or copied from another model) against its weights: predict, generate and
    load_pretrained ended in a size-mismatch traceback, and a config.json of fewer layers dropped the rest
    silently; init_from blamed the recipe's settings. Now one line naming config.json, the same for all."""
    folder = copy(root, "bert_cls", "edited")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    cli_error(["predict", str(folder), "-"], "save_pretrained", *words)
    recipe = root / "cls.yaml"
    (root / "texts.csv").write_text("text,label\n" + "".join(f"the quick fox {i},{i % 2}\n" for i in range(20)))
    recipe.write_text(json.dumps({"model": {"architecture": "encoder", "head": {"name": "classification"}},
                                  "data": {"name": "text_classification",
                                           "args": {"files": [str(root / "texts.csv")], "max_length": 16}},
                                  "train": {"steps": 1, "batch_size": 2}}))
    cli_error(["train", str(recipe), "--init-from", f"hf:{folder}", "--out", str(root / "run"),
              "--quiet"], "config.json", *words)
    assert not (root / "run").exists()

    gpt2 = copy(root, "gpt2", "gpt2_edited")
    config = json.loads((gpt2 / "config.json").read_text())
    (gpt2 / "config.json").write_text(json.dumps({**config, "n_positions": 32}))
    cli_error(["generate", str(gpt2), "--prompt", "the fox", "--greedy", "--max-new-tokens", "2"],
              "tokenizer.positions.weight", "(16, 16)")


def test_a_multi_label_classifier_is_refused_not_read_as_a_softmax_one(root, monkeypatch, cli_error):
    """problem_type multi_label_classification scores each class with a sigmoid (transformers' pipeline too);
    xformer predict gave softmax probabilities as the folder's, and init_from kept its classifier."""
    from xformer.interop.hf_vit import vit_config_to_xformer

    folder = copy(root, "bert_cls", "multi_label")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "problem_type": "multi_label_classification"}))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the quick fox\n"))
    err = cli_error(["predict", str(folder), "-"], "multi_label_classification",
                    "BertModel.from_pretrained(FOLDER).save_pretrained(NEW_FOLDER)")
    assert "the checkpoint a " not in err
    with pytest.raises(ValueError, match="multi_label_classification"):
        vit_config_to_xformer(transformers.ViTConfig(problem_type="multi_label_classification"))


def test_images_of_other_channels_than_a_vit_folders_are_named_as_such(tmp_path, cli_error):
    """A 3-channel ViT folder (mean / std of 3 channels in its image processor) and grey images: an image_folder
    with channels=1 was refused for 'data.args.mean ... got [0.5, 0.5, 0.5]', which the user never gave, and
    digits was told to set data.args.channels, which digits does not take."""
    from PIL import Image

    torch.manual_seed(0)
    transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2)).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(tmp_path / "vit")
    for label in ("a", "b"):
        (tmp_path / "images" / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "images" / "train" / label / f"{i}.png")
    train = {"steps": 1, "batch_size": 2}
    for name, data in (("folder", {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "channels": 1,
                                                                    "val_fraction": 0.34}}),
                       ("digits", {"name": "digits", "args": {}})):
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(json.dumps({"model": {"architecture": "encoder", "head": {"name": "classification"}},
                                      "data": data, "train": train}))
        err = cli_error(["train", str(recipe), "--init-from", f"hf:{tmp_path / 'vit'}",
                        "--out", str(tmp_path / name), "--quiet"],
                        "channels=1 but the checkpoint reads channels=3",
                        "data.args.channels=3 for an image_folder")
        assert "mean" not in err and not (tmp_path / name).exists()


def test_a_folder_or_file_of_the_other_kind_is_named_with_the_way_to_give_it(root, tmp_path, cli_error):
    """hf: of a timm export folder said "model_type None", hf: of an xformer run "no config.json", and a timm file
    given without timm: "not a run folder": each now names the form that reads it."""
    from safetensors.torch import save_file

    timm_folder = tmp_path / "timm_export"
    timm_folder.mkdir()
    save_file({"cls_token": torch.zeros(1, 1, 4)}, str(timm_folder / "model.safetensors"))
    (timm_folder / "config.json").write_text(json.dumps({"architecture": "vit_tiny_patch16_224",
                                                         "model_args": {}, "pretrained_cfg": {}}))
    cli_error(["predict", str(timm_folder), "x.png"],
              f"timm:{timm_folder / 'model.safetensors'}#vit_tiny_patch16_224")
    recipe = tmp_path / "r.yaml"
    (tmp_path / "texts.csv").write_text("text,label\n" + "".join(f"the fox {i},{i % 2}\n" for i in range(20)))
    recipe.write_text(json.dumps({"model": {"architecture": "encoder", "head": {"name": "classification"}},
                                  "data": {"name": "text_classification",
                                           "args": {"files": [str(tmp_path / "texts.csv")]}},
                                  "train": {"steps": 1}}))
    run = tmp_path / "a_run"
    run.mkdir()
    (run / "config.yaml").write_text("model: {}\n")
    cli_error(["train", str(recipe), "--init-from", f"hf:{run}", "--out", str(tmp_path / "o")],
              "xformer run folder", f"init_from: {run}")
    cli_error(["train", str(recipe), "--init-from", str(timm_folder / "model.safetensors"),
              "--out", str(tmp_path / "o")], f"timm:{timm_folder / 'model.safetensors'}#MODEL")
    assert not (tmp_path / "o").exists()
