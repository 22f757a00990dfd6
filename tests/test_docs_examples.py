"""Documented examples that failed as written (audit 18 G): `xformer generate --num-beams 4` on the seq2seq
recipe (docs/text.md), compare's up-front data check and its Ctrl-C line (docs/compare.md), and
`export_model` into a folder that does not exist yet (docs/interop.md)."""
import json
import signal
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from PIL import Image

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.vocab import CharVocab, WordPieceVocab
from xformer.generation import generate_text, max_positions


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- generate: the default stops at the positions


def _seq2seq(target_positions: int = 16):
    vocab = WordPieceVocab.train(["one two three four five six"] * 10, vocab_size=40, min_frequency=1)
    model = build_model(ModelConfig("encoder-decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32),
                                    PartConfig("seq2seq_text", {"vocab_size": vocab.vocab_size,
                                                                "max_positions": target_positions}),
                                    PartConfig("causal_lm")))
    return model.eval(), vocab


def _char_gpt(block: int = 32):
    vocab = CharVocab.from_text("the quick brown fox jumps over the lazy dog")
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": block}),
                                    PartConfig("causal_lm")))
    return model.eval(), vocab


def test_beam_search_on_an_encoder_decoder_runs_without_max_new_tokens(monkeypatch, capsys):
    """docs/text.md: `xformer generate runs/seq2seq --prompt ... --num-beams 4`; the decoder's 16 positions
    hold [BOS] + 15 new tokens, so the default writes at most 15 instead of refusing 200."""
    import xformer.commands.generate as command

    model, vocab = _seq2seq(16)
    monkeypatch.setattr(command, "load_text_model", lambda run_dir, checkpoint="best": (model, vocab))
    assert main(["generate", "runs/seq2seq", "--prompt", "three two one", "--num-beams", "4"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == generate_text(model, vocab, "three two one", 15, num_beams=4)
    assert main(["generate", "runs/seq2seq", "--prompt", "three two one", "--greedy"]) == 0
    assert capsys.readouterr().out.strip() == generate_text(model, vocab, "three two one", 15)
    # asked for more than fits, beam search still refuses in one line
    err = one_line_error(capsys, ["generate", "runs/seq2seq", "--prompt", "three two one", "--num-beams", "4",
                                  "--max-new-tokens", "200"])
    assert "beam search cannot go past the model's 16 positions (1 prompt + 200 new tokens, 15 fit)" in err
    assert "leave it out" in err


def test_the_documented_prompts_file_command(tmp_path, monkeypatch, capsys):
    """docs/text.md: `xformer generate runs/shakespeare --prompts-file prompts.txt --greedy --stop '\\n\\n'
    --out outputs.jsonl`, as the shell passes it (backslashes typed), on a char model of 32 positions."""
    import xformer.commands.generate as command

    model, vocab = _char_gpt(32)
    monkeypatch.setattr(command, "load_text_model", lambda run_dir, checkpoint="best": (model, vocab))
    monkeypatch.chdir(tmp_path)
    Path("prompts.txt").write_text("the quick\n\nthe lazy dog\n")
    argv = ["generate", "runs/shakespeare", "--prompts-file", "prompts.txt", "--greedy", "--stop", r"\n\n",
            "--out", "outputs.jsonl"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in Path("outputs.jsonl").read_text().splitlines()]
    assert rows == [{"prompt": p, "sample": 0, "text": generate_text(model, vocab, p)}
                    for p in ("the quick", "the lazy dog")]


def test_the_default_fills_a_decoders_positions_and_an_explicit_number_slides():
    model, vocab = _char_gpt(32)
    assert max_positions(model) == 32
    prompt = "the quick"  # 9 characters: 23 fit after it
    for kwargs in ({}, {"num_beams": 2}, {"do_sample": True, "generator": torch.Generator().manual_seed(0)}):
        assert len(generate_text(model, vocab, prompt, **kwargs)) == 23, kwargs  # no [EOS] in a char vocabulary
    assert generate_text(model, vocab, prompt) == generate_text(model, vocab, prompt, 23)
    assert len(generate_text(model, vocab, prompt, 60)) == 60  # asked for: the window slides (greedy, sampling)
    with pytest.raises(ConfigError, match="beam search cannot go past"):
        generate_text(model, vocab, prompt, 60, num_beams=2)
    with pytest.raises(ConfigError, match="the prompt fills all 32 of the model's positions"):
        generate_text(model, vocab, "the lazy dog " * 3)
    assert len(generate_text(model, vocab, "the lazy dog " * 3, 5)) == 5


def test_a_model_without_a_position_limit_writes_200_by_default():
    vocab = CharVocab.from_text("abc")
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, rope=True),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": 8,
                                                        "positions": "none"}),
                                    PartConfig("causal_lm")))
    assert max_positions(model) is None
    assert len(generate_text(model.eval(), vocab, "ab")) == 200


def test_generate_help_says_what_the_default_is(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "as many as fit in the model's positions after the prompt, at most 200" in text


# ---------------------------------------------------------------- compare: one batch, checked up front

TINY = ["--steps", "2", "--d-model", "16", "--layers", "1", "--heads", "2", "--quiet"]


def _image_folder(root: Path, per_class: int) -> Path:
    for split, n in (("train", per_class), ("val", 1)):
        for k, colour in enumerate(("red", "blue")):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (12, 12), colour).save(folder / f"{i}.png")
    return root


def test_an_image_folder_shorter_than_one_batch_is_refused_before_any_run(tmp_path, monkeypatch, capsys):
    """docs/compare.md: each domain's data are checked before anything is written. 6 training images and
    --batch-size 8: refused at once, naming --batch-size and the domain, with no text run trained first."""
    import xformer.train.run as train_module

    images = _image_folder(tmp_path / "images", per_class=3)
    text = tmp_path / "tiny.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    trained = []
    monkeypatch.setattr(train_module, "train_run", lambda *a, **k: trained.append(a) or pytest.fail("trained"))
    out = tmp_path / "report"
    err = one_line_error(capsys, ["compare", *TINY, "--domains", "text,images", "--text-data", str(text),
                                  "--image-data", str(images), "--batch-size", "8", "--out", str(out)])
    assert f"the images domain's training split (--image-data {images}) has 6 examples, fewer than one batch " \
           "of --batch-size 8; give --batch-size 6 or less" in err
    assert "train.batch_size" not in err
    assert trained == [] and not out.exists()


def test_a_resumed_compare_whose_data_shrank_names_overwrite(tmp_path, capsys):
    """--resume takes no --batch-size: the line says how to start again instead."""
    from xformer.compare import CompareConfig

    images = _image_folder(tmp_path / "images", per_class=3)
    out = tmp_path / "report"
    out.mkdir()
    options = CompareConfig(domains=["images"], steps=2, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                            batch_size=8, image_data=str(images))
    (out / "compare.json").write_text(json.dumps(asdict(options)))
    err = one_line_error(capsys, ["compare", "--resume", str(out), "--quiet"])
    assert "has 6 examples, fewer than one batch of --batch-size 8; start it again with --batch-size 6 or less " \
           "and --overwrite" in err


# ---------------------------------------------------------------- compare: what Ctrl-C says is true


def _interrupt_first_run(monkeypatch, signum=signal.SIGINT):
    import xformer.train.run as train_module
    from xformer.train.interrupt import TrainingInterrupted

    def stopped(config, run_dir, *args, **kwargs):
        Path(run_dir, "checkpoints", "step_00000001").mkdir(parents=True)
        (Path(run_dir) / "config.yaml").write_text("a run stopped part way\n")
        raise TrainingInterrupted(f"SIGINT: stopped after step 1 of 2, kept as {run_dir}/checkpoints/step_00000001; "
                                  f"continue with: xformer train --resume {run_dir}", signum)

    monkeypatch.setattr(train_module, "train_run", stopped)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_in_the_first_run_names_no_folder_it_removed(tmp_path, monkeypatch, capsys, signum):
    _interrupt_first_run(monkeypatch, signum)
    out = tmp_path / "report"
    assert main(["compare", *TINY, "--domains", "images", "--batch-size", "8", "--out", str(out)]) == 128 + signum
    err = capsys.readouterr().err.strip()
    assert err == ("xformer: interrupted: the compare stopped before any of its runs finished, so nothing was kept: "
                   "run the same command again"), err
    assert not out.exists()


def test_ctrl_c_in_an_overwrite_says_the_earlier_report_is_back(tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    out.mkdir()
    for name, content in (("compare.json", "{}"), ("results.json", "{}"), ("report.md", "the earlier report\n")):
        (out / name).write_text(content)
    _interrupt_first_run(monkeypatch)
    assert main(["compare", *TINY, "--domains", "images", "--batch-size", "8", "--out", str(out),
                 "--overwrite"]) == 130
    err = capsys.readouterr().err
    assert f"{out} holds the earlier report again, as it was: run the same command again" in err
    assert "xformer train --resume" not in err and "--resume" not in err
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "report.md", "results.json"]


# ---------------------------------------------------------------- export_model: a new folder, every format


def _vit():
    return build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, norm_eps=1e-6),
                                   PartConfig("image_patches", {"image_size": 8, "patch_size": 4, "channels": 1}),
                                   PartConfig("classification", {"n_classes": 3, "pool": "cls"})))


def _gpt():
    return build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32,
                                                         activation="gelu_tanh"),
                                   PartConfig("text", {"vocab_size": 20, "max_positions": 16}),
                                   PartConfig("causal_lm")))


@pytest.mark.parametrize("fmt, build, written", [("hf", _gpt, "model.safetensors"),
                                                 ("timm", _vit, "model.safetensors"),
                                                 ("onnx", _gpt, "model.onnx")])
def test_export_model_creates_a_missing_folder_in_every_format(tmp_path, fmt, build, written):
    """docs/interop.md: export_model(model, fmt, "out_dir") as written, with out_dir not there yet."""
    pytest.importorskip({"hf": "transformers", "timm": "safetensors", "onnx": "onnxscript"}[fmt])
    from xformer.interop.export import export_model

    folder = tmp_path / "new" / "out_dir"
    export_model(build().eval(), fmt, folder)
    assert (folder / written).is_file()
    with pytest.raises(ConfigError, match="already holds files; give a new or empty folder"):
        export_model(build().eval(), fmt, folder)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        export_model(build().eval(), fmt, tmp_path / "a_file")


def test_onnx_export_does_not_blame_the_model_for_a_file_system_error(tmp_path):
    pytest.importorskip("onnxscript")
    from xformer.interop.onnx_export import export_onnx

    with pytest.raises(OSError) as e:
        export_onnx(_gpt().eval(), tmp_path / "missing" / "model.onnx")
    assert "torch.onnx failed" not in str(e.value)
