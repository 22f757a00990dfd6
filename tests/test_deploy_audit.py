"""A user who trains a model and then deploys or shares it (xformer export): what the audit of 2026-12-04 found.

Tiny runs trained through the CLI for 2 steps; each test states the defect it pins."""
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from xformer.cli import main
from xformer.data.synthetic import PAD
from xformer.train.run import load_run_model

TINY = ["train.steps=2", "train.eval_every=2", "train.log_every=1", "train.warmup_steps=0", "train.batch_size=8",
        "train.device=cpu", "--quiet"]
CORE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32}
GPT = {"model": {"architecture": "decoder", "core": CORE, "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
       "data": {"name": "copy_digits", "args": {"n_train": 64, "n_val": 16, "n_test": 16, "length": 4}},
       "train": {"steps": 2, "lr": 1e-2, "ema": {"enabled": True, "decay": 0.5}}}
TASKS = Path(__file__).resolve().parents[1] / "tasks"
VIT = ["data.args.affine=false", "data.args.image_size=16", "model.tokenizer.args.patch_size=4", "model.core.d_model=16",
       "model.core.n_layers=1", "model.core.n_heads=2", "model.core.d_ff=32"]
SEQ2SEQ = {"model": {"architecture": "encoder-decoder", "core": CORE, "tokenizer": {"name": "seq2seq_text"},
                     "head": {"name": "causal_lm"}},
           "data": {"name": "reverse_digits", "args": {"n_train": 64, "n_val": 16, "n_test": 16, "min_len": 2,
                                                       "max_len": 6}},
           "train": {"steps": 2, "lr": 1e-2}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy_runs")
    made = {}

    def run(name: str) -> Path:
        if name not in made:
            recipe, overrides = TASKS / "vit_digits.yaml", VIT
            if name != "vit":
                recipe, overrides = root / f"{name}.yaml", []
                recipe.write_text(yaml.safe_dump({"gpt": GPT, "seq2seq": SEQ2SEQ}[name]))
            assert main(["train", str(recipe), *TINY, *overrides, "--out", str(root / name)]) == 0
            made[name] = root / name
        return made[name]

    return run


def _onnx(run: Path, out: Path) -> dict:
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    return json.loads((out / "export.json").read_text())


def _session(folder: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])


def test_the_onnx_graph_of_an_encoder_decoder_takes_a_batch_of_sources_of_different_lengths(runs, tmp_path):
    """The graph took src_ids and input_ids only: a batch of sources of different lengths, right-padded with [PAD]
    as the run's own batches are, was read with the padding attended to, so every padded row's logits differed
    from the model's. The graph now takes src_mask and attention_mask, as BERT's takes attention_mask."""
    run = runs("seq2seq")
    report = _onnx(run, tmp_path / "onnx")
    assert report["inputs"]["src_mask"] == ["batch", "source"], report["inputs"]
    _, model = load_run_model(run)
    pad = PAD  # reverse_digits pads with it; the model has no pad_id
    src = torch.tensor([[3, 4, 5, 6, 7], [5, 6, pad, pad, pad]])
    src_mask = (src != pad).long()
    ids = torch.tensor([[1, 7, 6, 5], [1, 6, 5, pad]])
    mask = (ids != pad).long()
    batch = {"src_ids": src, "src_mask": src_mask, "input_ids": ids, "attention_mask": mask}
    session = _session(tmp_path / "onnx")
    (got,) = session.run(["logits"], {i.name: batch[i.name].numpy() for i in session.get_inputs()})
    with torch.no_grad():
        want = model(batch)["logits"]
        alone = model({"src_ids": src[1:, :2], "input_ids": ids[1:, :3]})["logits"]
    torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.from_numpy(got)[1:, :3], alone, atol=1e-4, rtol=0)  # padding changes nothing


def test_the_onnx_graph_of_a_gpt_takes_left_padded_prompts(runs, tmp_path):
    """A GPT's graph took input_ids only, so prompts of different lengths could not share a batch: padded, the
    [PAD] tokens were read as text and shifted the positions of every real token after them. With attention_mask
    the left-padded row gives the logits of the prompt alone, as xformer generate batches prompts."""
    run = runs("gpt")
    report = _onnx(run, tmp_path / "onnx")
    assert report["inputs"] == {"input_ids": ["batch", "tokens"], "attention_mask": ["batch", "tokens"]}
    _, model = load_run_model(run)
    pad = model.config.tokenizer.args.get("pad_id") or 0
    ids = torch.tensor([[3, 4, 5, 6, 7], [pad, pad, 5, 6, 7]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    session = _session(tmp_path / "onnx")
    (got,) = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        alone = model({"input_ids": ids[1:, 2:]})["logits"]
        full = model({"input_ids": ids[:1]})["logits"]
    torch.testing.assert_close(torch.from_numpy(got)[1:, 2:], alone, atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.from_numpy(got)[:1], full, atol=1e-4, rtol=0)
    # the export's own check covered a padded row too
    assert report["check_inputs"]["attention_mask"] == report["check_inputs"]["input_ids"]


def test_export_json_says_the_weights_are_the_moving_average(runs, tmp_path):
    """A run trained with train.ema exported its moving average (as evaluate reads it) but export.json said only
    'checkpoint: step_2', as for the trained weights: a user comparing the file with model.safetensors could not
    tell which. It now says which weights were written; they are the checkpoint's ema.safetensors."""
    run = runs("gpt")
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    report = json.loads((tmp_path / "hf" / "export.json").read_text())
    assert report["weights"] == "ema.safetensors (the moving average of the weights, train.ema)", report
    ema = load_file(run / "checkpoints" / report["checkpoint"] / "ema.safetensors")
    hf = load_file(tmp_path / "hf" / "model.safetensors")
    assert torch.equal(hf["transformer.wte.weight"], ema["tokenizer.embed.weight"])
    onnx = _onnx(run, tmp_path / "onnx")
    assert onnx["weights"] == report["weights"]


@pytest.mark.parametrize("override, words", [
    ({"tokenizer": {"name": "text", "args": {"vocab_size": 12, "positions": "sinusoidal"}}},
     ["sinusoidal positions", "model.tokenizer.args.positions=learned"]),
    ({"tokenizer": {"name": "text", "args": {"vocab_size": 12, "positions": "none"}}},
     ["no position table", "model.tokenizer.args.positions=learned"]),
    ({"core": {**CORE, "final_norm": False}}, ["no final norm", "model.core.final_norm=true"]),
    ({"core": {**CORE, "norm_first": False}}, ["post-norm", "model.core.norm_first=true"]),
    ({"core": {**CORE, "norm": "rmsnorm"}}, ["rmsnorm", "model.core.norm=layernorm"]),
    ({"head": {"name": "causal_lm", "args": {"bias": True}}}, ["a bias in the output layer", "bias=false"]),
])
def test_a_gpt2_refusal_names_the_setting_and_its_value(override, words):
    """'the model has a tokenizer other than 'text' with learned positions' for a text GPT with sinusoidal
    positions, 'a norm other than pre-LayerNorm with a final norm' for one without a final norm: the line named
    neither the setting nor the key to change. Now it names both."""
    from xformer.config import from_dict
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport
    from xformer.models import ModelConfig, build_model

    config = {"architecture": "decoder", "core": CORE, "tokenizer": {"name": "text", "args": {"vocab_size": 12}},
              "head": {"name": "causal_lm"}, **override}
    model = build_model(from_dict(ModelConfig, config))
    with pytest.raises(CannotExport) as e:
        check_exportable(model, "hf")
    line = str(e.value)
    assert "\n" not in line and "cannot export to GPT-2" in line and "--format onnx" in line, line
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize("override, words", [
    ({"norm_first": True, "final_norm": False}, ["pre-norm blocks", "model.core.norm_first=false"]),
    ({"norm_first": False, "final_norm": True}, ["a final norm", "model.core.final_norm=false"]),
])
def test_a_bert_refusal_names_the_norm_setting(override, words):
    """'a norm other than post-LayerNorm without a final norm' named no setting; now the one to change."""
    from xformer.config import from_dict
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport
    from xformer.models import ModelConfig, build_model

    config = {"architecture": "encoder", "core": {**CORE, **override},
              "tokenizer": {"name": "bert_text", "args": {"vocab_size": 12}}, "head": {"name": "masked_lm"}}
    with pytest.raises(CannotExport) as e:
        check_exportable(build_model(from_dict(ModelConfig, config)), "hf")
    for word in ["cannot export to BERT", "--format onnx", *words]:
        assert word in str(e.value), (word, str(e.value))


def test_the_onnx_folder_of_a_run_older_than_preprocess_json_says_how_to_feed_images(runs, tmp_path):
    """An image run written before preprocess.json existed: --format timm and hf wrote the transform its
    config.yaml implies (as predict reads such a run), --format onnx copied only what the run holds, so the
    folder that is to serve the model alone said nothing of the input size, resize or mean/std. It now writes the
    implied preprocess.json, the file the run would have written."""
    import shutil

    old = tmp_path / "old_vit"
    shutil.copytree(runs("vit"), old)
    written = json.loads((old / "preprocess.json").read_text())
    (old / "preprocess.json").unlink()
    report = _onnx(old, tmp_path / "onnx")
    assert "preprocess.json" in report["run_files"], report["run_files"]
    assert json.loads((tmp_path / "onnx" / "preprocess.json").read_text()) == written


def test_a_vit_refusal_names_the_one_setting_it_has():
    """A ViT with shifted patches was refused by --format hf as having 'a norm before the blocks or shifted
    patches', a rope GPT as having 'rotary positions or grouped-query attention': the user had to find out which.
    Each line now names the setting the model has."""
    from xformer.config import from_dict
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport
    from xformer.models import ModelConfig, build_model

    patches = {"image_size": 8, "patch_size": 4, "channels": 1, "shifted_patches": True}
    cases = [({"architecture": "encoder", "core": CORE, "head": {"name": "classification", "args": {"n_classes": 3}},
               "tokenizer": {"name": "image_patches", "args": patches}}, "shifted patch tokenization"),
             ({"architecture": "decoder", "core": {**CORE, "rope": True}, "head": {"name": "causal_lm"},
               "tokenizer": {"name": "text", "args": {"vocab_size": 12, "positions": "none"}}}, "rotary positions;")]
    for config, words in cases:
        with pytest.raises(CannotExport) as e:
            check_exportable(build_model(from_dict(ModelConfig, config)), "hf")
        assert words in str(e.value) and " or " not in str(e.value).split("has ")[1], str(e.value)
