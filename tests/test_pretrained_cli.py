"""Issue 16, parts 1, 2 and 5: Hugging Face folders (GPT-2, BERT) and timm ViT files as starting points
through the CLI (`xformer train --init-from hf:/timm:`, `init_from` in a recipe), then evaluate, resume,
generate and predict on the fine-tuned run; `xformer generate HF_FOLDER`; generate_text with a Hugging Face
tokenizer. Nothing is downloaded: every model and tokenizer is built here from a small config, random init.

"Before any training step" is checked through the CLI with train.lr=1e-9: two AdamW steps move each weight
by about 2e-9, far below the 1e-4 tolerance, so the run's weights are the checkpoint's as loaded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from xformer.cli import main

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TOL = 1e-4
CORPUS = "\n\n".join(
    f"the quick brown fox number {i} jumps over the lazy dog. a cat sees {i % 7} birds and sleeps in the sun."
    for i in range(60))
TINY_TRAIN = {"steps": 2, "batch_size": 4, "lr": 1e-9, "warmup_steps": 0, "eval_every": 2, "log_every": 1}
# no train.eval_batches: xformer evaluate scores whole splits, and a test compares it with metrics.json


class RunsCode:
    """A pickle that would call print when unpickled: torch.load(weights_only=True) must refuse it."""

    def __reduce__(self):
        return print, ("unpickled code ran",)


def one_line_error(capsys, argv: list[str], *words: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "unpickled code ran" not in captured.out
    err = captured.err.strip()
    assert err.startswith("xformer: error:") and "\n" not in err, err
    for word in words:
        assert word in err, err
    return err


def write_recipe(path: Path, recipe: dict) -> str:
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def run_model(run: Path):
    from xformer.train.run import load_run_model

    return load_run_model(run)[1]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A GPT-2 folder (byte-level BPE tokenizer), a BERT folder (WordPiece, weights as pytorch_model.bin),
    a timm ViT .safetensors file, and the text corpus."""
    from safetensors.torch import save_file
    from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pretrained")
    (root / "corpus.txt").write_text(CORPUS)
    torch.manual_seed(0)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([CORPUS], vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    gpt2_tok = transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                              bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    eos = gpt2_tok.eos_token_id
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(gpt2_tok), n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=eos,
        eos_token_id=eos)).eval()
    gpt2.save_pretrained(root / "gpt2")
    gpt2_tok.save_pretrained(root / "gpt2")

    words = sorted(set(CORPUS.replace(".", " . ").split()))
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + [f"##{c}" for c in "0123456789"]
    (root / "vocab.txt").write_text("\n".join(pieces) + "\n")
    bert_tok = transformers.BertTokenizerFast(tokenizer_object=BertWordPieceTokenizer(
        str(root / "vocab.txt"), lowercase=True)._tokenizer)
    bert = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=len(pieces), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64)).eval()
    bert.save_pretrained(root / "bert")
    bert_tok.save_pretrained(root / "bert")
    (root / "bert" / "model.safetensors").unlink()  # the pickled format, read with weights_only
    torch.save(bert.state_dict(), root / "bert" / "pytorch_model.bin")

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=8, patch_size=2, in_chans=1,
                            embed_dim=48, depth=2, num_classes=10)
    with torch.no_grad():  # timm zero-initialises the head and biases: make every weight matter
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(root / "vit.safetensors"))
    return {"root": root, "gpt2": (gpt2, gpt2_tok), "bert": (bert, bert_tok), "vit": vit.eval()}


def test_gpt2_folder_fine_tunes_evaluates_resumes_and_generates(folders, capsys):
    root, (gpt2, tok) = folders["root"], folders["gpt2"]
    recipe = write_recipe(root / "lm.yaml", {  # no model section: the checkpoint's decoder, the default head
        "data": {"name": "text_lm", "args": {"files": [str(root / "corpus.txt")], "tokenizer": "char",
                                             "block_size": 16, "val_fraction": 0.1}},
        "train": TINY_TRAIN})
    run = root / "gpt2_run"
    assert main(["train", recipe, "--init-from", f"hf:{root / 'gpt2'}", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"init_from hf:{root / 'gpt2'}: loaded" in out and "left fresh: none" in out
    assert "architecture, tokenizer from the checkpoint" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["core"]["d_model"] == 32 and saved["model"]["tokenizer"]["args"]["vocab_size"] == len(tok)

    # the run's vocabulary is the folder's: the same ids, <|endoftext|> as the run's [EOS]
    from xformer.data.vocab import load_vocab

    vocab = load_vocab(run / "tokenizer")
    text = "the lazy dog sees 3 birds"
    assert vocab.encode(text) == tok.encode(text) and vocab.eos_id == tok.eos_token_id
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        torch.testing.assert_close(run_model(run)({"input_ids": ids})["logits"], gpt2(ids).logits, atol=TOL, rtol=0)

    assert main(["evaluate", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["val_loss"] == pytest.approx(json.loads((run / "metrics.json").read_text())["val_loss"], rel=1e-5)
    assert main(["train", "--resume", str(run), "train.steps=3", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    # and it learns: a few steps at a real learning rate lower the validation loss
    assert main(["train", recipe, "train.lr=3e-3", "train.steps=6", "train.eval_every=6", "--init-from",
                 f"hf:{root / 'gpt2'}", "--out", str(root / "gpt2_lr"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["val_loss"] < metrics["val_loss"] - 0.1

    # generate: the run, the Hugging Face folder itself, and transformers' own greedy decoding agree
    prompt = "the quick brown"
    expect = gpt2.generate(torch.tensor([tok.encode(prompt)]), max_new_tokens=6, do_sample=False,
                           pad_token_id=tok.eos_token_id)[0, len(tok.encode(prompt)):].tolist()
    expect = prompt + tok.decode(expect[: expect.index(tok.eos_token_id)] if tok.eos_token_id in expect else expect)
    for source in (root / "gpt2", run):
        assert main(["generate", str(source), "--prompt", prompt, "--greedy", "--max-new-tokens", "6"]) == 0
        assert capsys.readouterr().out.rstrip("\n") == expect

    # generate_text takes the transformers tokenizer object itself
    from xformer.generation import generate_text
    from xformer.interop.pretrained import load_pretrained

    from tokenizers import Tokenizer

    model, _ = load_pretrained(root / "gpt2")
    assert prompt + generate_text(model, tok, prompt, 6) == expect
    assert prompt + generate_text(model, Tokenizer.from_file(str(root / "gpt2" / "tokenizer.json")), prompt, 6) == expect


def test_folders_and_files_are_read_without_transformers(folders, monkeypatch):
    """The runtime-only install has no transformers: reading hf: folders and timm: files does not need it."""
    from xformer.interop.pretrained import load_pretrained

    monkeypatch.setitem(__import__("sys").modules, "transformers", None)  # `import transformers` fails
    root = folders["root"]
    for source in (root / "gpt2", f"hf:{root / 'bert'}", f"timm:{root / 'vit.safetensors'}#vit_tiny_patch16_224"):
        model, _ = load_pretrained(source)
        assert sum(p.numel() for p in model.parameters()) > 0


def test_bert_folder_fine_tunes_a_classifier(folders, capsys):
    root, (bert, tok) = folders["root"], folders["bert"]
    rows = [f"{'the quick brown fox jumps' if i % 2 else 'a cat sees birds and sleeps'} {i},{i % 2}"
            for i in range(40)]
    (root / "labels.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    recipe = write_recipe(root / "cls.yaml", {
        "init_from": f"hf:{root / 'bert'}",
        "model": {"architecture": "encoder", "tokenizer": {"name": "bert_text", "args": {"dropout": 0.0}},
                  "head": {"name": "classification", "args": {"pool": "cls"}}},
        "data": {"name": "text_classification", "args": {"files": [str(root / "labels.csv")], "max_length": 16,
                                                         "val_fraction": 0.2, "test_fraction": 0.2}},
        "train": TINY_TRAIN})
    run = root / "bert_run"
    assert main(["train", recipe, "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "left fresh: head.fc" in out and "head.decoder" in out  # the new 2-class head; the MLM head unused
    # the encoder is BERT's: the same hidden states as transformers' BertModel
    model = run_model(run)
    ids = torch.tensor([tok("the quick brown fox")["input_ids"]])
    with torch.no_grad():
        ours = model.run_core(model.tokenizer({"input_ids": ids}))
        torch.testing.assert_close(ours, bert.bert(ids).last_hidden_state, atol=TOL, rtol=0)
    assert main(["evaluate", str(run)]) == 0
    assert "test_accuracy" in json.loads(capsys.readouterr().out)
    assert main(["train", "--resume", str(run), "train.steps=3", "--quiet"]) == 0
    one_line_error(capsys, ["generate", str(run), "--prompt", "the"], "decoder")

    # masked-LM fine-tuning keeps the folder's own head: transformers' logits, through the CLI
    mlm = write_recipe(root / "mlm.yaml", {
        "model": {"architecture": "encoder", "head": {"name": "masked_lm"}},
        "data": {"name": "text_mlm", "args": {"files": [str(root / "corpus.txt")], "max_length": 32,
                                              "document_chars": 300}},
        "train": TINY_TRAIN})
    assert main(["train", mlm, "--init-from", f"hf:{root / 'bert'}", "--out", str(root / "mlm_run"), "--quiet"]) == 0
    assert "left fresh: none; not used from the checkpoint: none" in capsys.readouterr().out
    with torch.no_grad():
        torch.testing.assert_close(run_model(root / "mlm_run")({"input_ids": ids})["logits"], bert(ids).logits,
                                   atol=TOL, rtol=0)

    # the Python loader keeps the folder's own masked-LM head: transformers' logits
    from xformer.interop.pretrained import load_pretrained

    model, vocab = load_pretrained(f"hf:{root / 'bert'}")
    assert vocab.encode("The quick dogs") == tok("The quick dogs", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model({"input_ids": ids})["logits"], bert(ids).logits, atol=TOL, rtol=0)


def test_timm_file_fine_tunes_evaluates_resumes_and_predicts(folders, capsys, tmp_path):
    from PIL import Image

    root, vit = folders["root"], folders["vit"]
    recipe = write_recipe(root / "vit.yaml", {
        "model": {"architecture": "encoder", "tokenizer": {"name": "image_patches", "args": {"patch_size": 2}},
                  "head": {"name": "classification"}},
        "data": {"name": "digits", "args": {"image_size": 8, "val_fraction": 0.1}},
        "train": TINY_TRAIN})
    run = root / "vit_run"
    spec = f"timm:{root / 'vit.safetensors'}#vit_tiny_patch16_224"
    assert main(["train", recipe, "--init-from", spec, "--out", str(run), "--quiet"]) == 0
    assert "left fresh: none" in capsys.readouterr().out  # 10 digits = the checkpoint's 10 classes
    images = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(run_model(run)({"images": images})["logits"], vit(images), atol=TOL, rtol=0)
    assert main(["evaluate", str(run)]) == 0
    assert "test_accuracy" in json.loads(capsys.readouterr().out)
    assert main(["train", "--resume", str(run), "train.steps=3", "--quiet"]) == 0
    capsys.readouterr()
    Image.new("L", (8, 8), 200).save(tmp_path / "a.png")
    assert main(["predict", str(run), str(tmp_path / "a.png")]) == 0
    assert "a.png" in capsys.readouterr().out

    # another number of classes: the recipe's head starts fresh, the rest is the checkpoint's
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    from xformer.interop.pretrained import load_source, resolve_model
    from xformer.models import ModelConfig, PartConfig

    pre = load_source(f"timm:{tmp_path / 'vit.pth'}#vit_tiny_patch16_224")
    model = resolve_model(ModelConfig("encoder", head=PartConfig("classification", {"n_classes": 3})), pre)
    assert model.head.args["n_classes"] == 3 and model.core.d_model == 48 and model.core.n_layers == 2
    # regularisation is the recipe's: a core that only sets drop path keeps the checkpoint's sizes
    from xformer.core import CoreConfig

    model = resolve_model(ModelConfig("encoder", CoreConfig(drop_path=0.1), head=PartConfig("classification")), pre)
    assert model.core.drop_path == 0.1 and model.core.d_model == 48 and model.core.norm_eps == 1e-6


@pytest.mark.parametrize("case, words", [
    ("missing_folder", ["not a Hugging Face model folder"]),
    ("encoder_recipe", ["model.architecture", "decoder"]),
    ("long_blocks", ["max_positions=64", "block_size"]),
    ("core_contradicts", ["model.core.d_model"]),
    ("bert_lm_head", ["causal_lm", "masked_lm"]),
    ("pickle_with_code", ["weights_only=True", "never unpickles"]),
    ("timm_no_name", ["timm model name"]),
    ("timm_wrong_name", ["does not fit"]),
    ("timm_image_size", ["data.args.image_size=15 is not a multiple of the checkpoint's patch size [2, 2]"]),
    ("timm_text_data", ["image dataset"]),
    ("resume_and_init", ["not both"]),
    ("evaluate_hf", ["--init-from hf:", "xformer evaluate RECIPE.yaml init_from=hf:"]),
    ("generate_bert", ["GPT-2"]),
    ("generate_no_folder", ["nor a Hugging Face folder"]),
])
def test_refusals_are_one_line(folders, capsys, tmp_path, case, words):
    root = folders["root"]
    gpt2, bert, vit = root / "gpt2", root / "bert", root / "vit.safetensors"
    lm = {"data": {"name": "text_lm", "args": {"files": [str(root / "corpus.txt")], "block_size": 16}},
          "train": TINY_TRAIN}
    digits = {"model": {"architecture": "encoder", "tokenizer": {"name": "image_patches"},
                        "head": {"name": "classification"}},
              "data": {"name": "digits", "args": {"image_size": 8}}, "train": TINY_TRAIN}
    run = tmp_path / "run"
    train = ["train", "--out", str(run), "--quiet"]
    text_vit = write_recipe(tmp_path / "text_vit.yaml", {**lm, "model": digits["model"]})
    lm = write_recipe(tmp_path / "lm.yaml", lm)
    digits = write_recipe(tmp_path / "digits.yaml", digits)
    argv = {
        "missing_folder": [*train, lm, "--init-from", f"hf:{tmp_path / 'nope'}"],
        "encoder_recipe": [*train, lm, "model.architecture=encoder",
                           "--init-from", f"hf:{gpt2}"],
        "long_blocks": [*train, lm, "data.args.block_size=64",
                        "--init-from", f"hf:{gpt2}"],
        "core_contradicts": [*train, lm, "model.core.d_model=64",
                             "--init-from", f"hf:{gpt2}"],
        "bert_lm_head": [*train, lm, "model.architecture=encoder", "--init-from", f"hf:{bert}"],
        "pickle_with_code": [*train, digits, "--init-from", f"timm:{tmp_path / 'code.pth'}#vit_tiny_patch16_224"],
        "timm_no_name": [*train, digits, "--init-from", f"timm:{vit}"],
        "timm_wrong_name": [*train, digits, "--init-from",
                            f"timm:{vit}#vit_small_patch16_224,qkv_bias=false"],
        "timm_image_size": [*train, digits, "data.args.image_size=15",
                            "--init-from", f"timm:{vit}#vit_tiny_patch16_224"],
        "timm_text_data": [*train, text_vit,
                           "--init-from", f"timm:{vit}#vit_tiny_patch16_224"],
        "resume_and_init": ["train", "--resume", str(run), "--init-from", f"hf:{gpt2}"],
        "evaluate_hf": ["evaluate", str(gpt2)],
        "generate_bert": ["generate", str(bert), "--prompt", "the"],
        "generate_no_folder": ["generate", str(tmp_path), "--prompt", "the"],
    }[case]
    torch.save({"head.weight": RunsCode()}, tmp_path / "code.pth")
    one_line_error(capsys, argv, *words)
    assert not run.exists()  # refused before the run folder is made
