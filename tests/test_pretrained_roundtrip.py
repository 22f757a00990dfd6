"""Issue 16, the round trip: a Hugging Face folder (GPT-2, BERT) or a timm ViT file -> `xformer train --init-from`
-> `xformer export` -> reloaded by transformers / timm themselves, which must give the ORIGINAL model's logits
(within 1e-4) and, for Hugging Face, the original tokenizer: the same ids and the same special tokens
(GPT-2's <|endoftext|> comes back as <|endoftext|>, not as the run's [EOS]). The fine-tuned GPT-2 run also
goes to ONNX, run by onnxruntime. The models and tokenizers are test_pretrained_cli.py's (built offline,
random init); train.lr=1e-9 keeps the weights the checkpoint's (see there)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from test_pretrained_cli import TINY_TRAIN, folders, write_recipe  # noqa: F401 - folders is a fixture
from xformer.cli import main

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TOL = 1e-4
TEXT = "the quick brown fox sees 3 birds<|endoftext|>a cat sleeps"
SPECIALS = ("bos", "eos", "unk", "pad", "cls", "sep", "mask")


def train_and_export(root: Path, name: str, recipe: dict, init_from: str, fmt: str, capsys) -> tuple[Path, Path]:
    run, out = root / f"{name}_run", root / f"{name}_{fmt}"
    if not run.exists():
        argv = ["train", write_recipe(root / f"{name}.yaml", recipe), "--init-from", init_from, "--out", str(run)]
        assert main([*argv, "--quiet"]) == 0
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    capsys.readouterr()
    return run, out


def same_special_tokens(theirs, ours) -> None:
    for role in SPECIALS:
        assert getattr(ours, f"{role}_token") == getattr(theirs, f"{role}_token"), role
        assert getattr(ours, f"{role}_token_id") == getattr(theirs, f"{role}_token_id"), role


def test_gpt2_folder_to_run_to_gpt2_folder_and_onnx(folders, capsys):
    root, (gpt2, tok) = folders["root"], folders["gpt2"]
    recipe = {"data": {"name": "text_lm", "args": {"files": [str(root / "corpus.txt")], "block_size": 16,
                                                   "val_fraction": 0.1}}, "train": TINY_TRAIN}
    run, out = train_and_export(root, "gpt2", recipe, f"hf:{root / 'gpt2'}", "hf", capsys)

    back = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(back).__name__ == "GPT2LMHeadModel"
    ids = torch.tensor([tok.encode(TEXT)[:16], tok.encode("a cat sees 5 birds and the lazy dog")[:16]])
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, gpt2(ids).logits, atol=TOL, rtol=0)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size", "n_positions"):
        assert getattr(back.config, key) == getattr(gpt2.config, key), key

    # the tokenizer comes back as the folder's: the same ids, <|endoftext|> (not [EOS]) as bos, eos and unk
    back_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert back_tok.encode(TEXT) == tok.encode(TEXT) and tok.eos_token_id in tok.encode(TEXT)
    assert back_tok.decode(tok.encode(TEXT)) == tok.decode(tok.encode(TEXT)) == TEXT
    same_special_tokens(tok, back_tok)
    assert back_tok.eos_token == "<|endoftext|>" and "[EOS]" not in back_tok.get_vocab()
    assert len(back_tok) == len(tok)
    assert json.loads((out / "export.json").read_text())["special_tokens_from"] == str(run / "tokenizer" / "hf_source")

    # a run started from that run (init_from: the run, its tokenizer) still goes back under the folder's names
    again = {k: v for k, v in yaml.safe_load((run / "config.yaml").read_text()).items() if k != "init_from"}
    _, out = train_and_export(root, "gpt2_again", again, str(run), "hf", capsys)
    back_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert back_tok.encode(TEXT) == tok.encode(TEXT) and back_tok.eos_token == "<|endoftext|>"

    # ONNX: the fine-tuned run's graph in onnxruntime gives PyTorch's (and so the folder's) logits
    import onnxruntime

    run, onnx_out = train_and_export(root, "gpt2", recipe, f"hf:{root / 'gpt2'}", "onnx", capsys)
    session = onnxruntime.InferenceSession(str(onnx_out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    (logits,) = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": torch.ones_like(ids).numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), gpt2(ids).logits, atol=TOL, rtol=0)


def test_the_export_keeps_the_folder_names_after_the_folder_is_gone(folders, capsys, tmp_path):
    """The run keeps a copy of the folder's config and tokenizer files (RUN/tokenizer/hf_source): deleting the
    source folder after training changes nothing in the export."""
    import shutil

    root, tok = folders["root"], folders["gpt2"][1]
    moved = tmp_path / "gpt2_elsewhere"
    shutil.copytree(root / "gpt2", moved)
    recipe = {"data": {"name": "text_lm", "args": {"files": [str(root / "corpus.txt")], "block_size": 16,
                                                   "val_fraction": 0.1}}, "train": TINY_TRAIN}
    run = tmp_path / "run"
    argv = ["train", write_recipe(tmp_path / "r.yaml", recipe), "--init-from", f"hf:{moved}", "--out", str(run)]
    assert main([*argv, "--quiet"]) == 0
    assert not (run / "tokenizer" / "hf_source" / "model.safetensors").exists()  # never the weights
    shutil.rmtree(moved)
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    back_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert back_tok.encode(TEXT) == tok.encode(TEXT) and back_tok.eos_token == "<|endoftext|>"
    same_special_tokens(tok, back_tok)


def test_bert_folder_to_run_to_bert_folder(folders, capsys):
    root, (bert, tok) = folders["root"], folders["bert"]
    recipe = {"model": {"architecture": "encoder", "head": {"name": "masked_lm"}},
              "data": {"name": "text_mlm", "args": {"files": [str(root / "corpus.txt")], "max_length": 32,
                                                    "document_chars": 300}},
              "train": TINY_TRAIN}
    _, out = train_and_export(root, "bert", recipe, f"hf:{root / 'bert'}", "hf", capsys)

    back = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    assert type(back).__name__ == "BertForMaskedLM"
    batch = tok(["the quick brown fox jumps", "a cat sees 12 birds and sleeps in the sun"], padding=True,
                return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).logits, bert(**batch).logits, atol=TOL, rtol=0)

    back_tok = transformers.AutoTokenizer.from_pretrained(out)
    text = "The lazy dog sees 3 birds."
    assert back_tok(text)["input_ids"] == tok(text)["input_ids"]  # [CLS] ... [SEP] as the source's
    assert back_tok(text, "a cat")["token_type_ids"] == tok(text, "a cat")["token_type_ids"]
    same_special_tokens(tok, back_tok)


def test_timm_file_to_run_to_timm_state_dict(folders, capsys):
    from safetensors.torch import load_file

    root, vit = folders["root"], folders["vit"]
    recipe = {"model": {"architecture": "encoder", "tokenizer": {"name": "image_patches", "args": {"patch_size": 2}},
                        "head": {"name": "classification"}},
              "data": {"name": "digits", "args": {"image_size": 8, "val_fraction": 0.1}},
              "train": TINY_TRAIN}
    _, out = train_and_export(root, "vit", recipe, f"timm:{root / 'vit.safetensors'}#vit_tiny_patch16_224", "timm",
                              capsys)
    config = json.loads((out / "config.json").read_text())
    back = timm.create_model(config["architecture"], pretrained=False, **config["model_args"]).eval()
    back.load_state_dict(load_file(out / "model.safetensors"), strict=True)
    assert set(back.state_dict()) == set(vit.state_dict())
    images = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(images), vit(images), atol=TOL, rtol=0)
