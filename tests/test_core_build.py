"""The core as composition (issue 14): builders read the config, modules take parts, and what earlier
releases saved still loads: the same state-dict names, and a run folder written before the change."""
import ast
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xformer.core import (CoreConfig, Decoder, DecoderBlock, Encoder, EncoderBlock, EncoderDecoder, PostNormResidual,
                          PreNormResidual, ResidualAttentionEncoder, SelfAttention, build)

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = json.loads((FIXTURES / "core_state_dict_keys.json").read_text())
CORE = Path(__file__).parents[1] / "xformer" / "core"


def shapes(module: torch.nn.Module) -> dict[str, str]:
    return {k: "x".join(map(str, v.shape)) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", list(KEYS["cores"]))
def test_core_state_dict_names_are_those_of_the_previous_release(name):
    """Keys, shapes and their order as written by the stacks before the builders (tests/fixtures)."""
    architecture = name.split("/")[0]
    core = build.ARCHITECTURES[architecture](CoreConfig(**KEYS["base"], **KEYS["cores"][name]["config"]))
    assert list(shapes(core).items()) == list(KEYS["cores"][name]["state_dict"].items())


@pytest.mark.parametrize("task", list(KEYS["models"]))
def test_recipe_state_dict_names_are_those_of_the_previous_release(task):
    from xformer.models import build_model
    from xformer.train.config import load_experiment

    entry = KEYS["models"][task]
    config = load_experiment(Path(__file__).parents[1] / "tasks" / f"{task}.yaml").model
    config.tokenizer.args.update(entry["tokenizer_args"])
    config.head.args.update(entry["head_args"])
    assert list(shapes(build_model(config)).items()) == list(entry["state_dict"].items())


def test_run_folder_of_the_previous_release_evaluates_and_resumes(tmp_path, capsys):
    """tests/fixtures/run_before_core_builders: ``xformer train tasks/reverse.yaml train.steps=4
    train.eval_every=4 data.args.n_train=256 data.args.n_val=32 data.args.n_test=32 model.core.d_model=16
    model.core.d_ff=32`` with the code before the builders (an encoder-decoder; tensorboard/ and the plot removed).
    The commands run in this process (the same code as the console script, without two interpreter starts)."""
    from xformer.cli import main

    run = shutil.copytree(FIXTURES / "run_before_core_builders", tmp_path / "run")
    recorded = json.loads((run / "metrics.json").read_text())
    capsys.readouterr()
    status = main(["evaluate", str(run)])
    evaluated = capsys.readouterr()
    assert status == 0, evaluated.err
    again = json.loads(evaluated.out)
    for key in ("val_loss", "val_token_accuracy", "test_loss", "test_token_accuracy"):
        assert again[key] == pytest.approx(recorded[key], abs=1e-6), key

    assert main(["train", "--resume", str(run), "train.steps=6", "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6
    before = load_file(run / "checkpoints" / "step_00000004" / "model.safetensors")
    after = load_file(run / "checkpoints" / "step_00000006" / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained on from step 4


def test_builders_hand_parts_to_the_modules():
    pre = build.encoder(CoreConfig(d_model=16, n_layers=2, n_heads=2))
    post = build.decoder(CoreConfig(d_model=16, n_layers=2, n_heads=2, norm_first=False))
    assert type(pre) is Encoder and all(type(b) is EncoderBlock for b in pre.blocks)
    assert isinstance(pre.blocks[0].res1, PreNormResidual) and isinstance(post.blocks[0].res2, PostNormResidual)
    assert type(post) is Decoder and isinstance(post.norm, torch.nn.Identity)  # post-norm: no final norm
    both = build.encoder_decoder(CoreConfig(d_model=16, n_layers=2, n_heads=2, n_decoder_layers=3))
    assert type(both) is EncoderDecoder and len(both.encoder.blocks) == 2 and len(both.decoder.blocks) == 3
    assert all(isinstance(b, DecoderBlock) and b.cross_attn is not None for b in both.decoder.blocks)
    # a stack is its blocks and a norm: compose one by hand from the same parts
    cfg = CoreConfig(d_model=16, n_layers=1, n_heads=2, init="torch")
    blocks = [EncoderBlock(SelfAttention(16, 2), build.feed_forward(cfg), build.residual(cfg), build.residual(cfg))]
    x = torch.randn(2, 3, 16)
    assert Encoder(blocks, build.norm(cfg))(x).shape == x.shape
    with pytest.raises(TypeError, match="build.encoder"):
        Encoder(cfg)  # the earlier spelling points to the builders


def test_only_the_residual_attention_encoder_passes_scores():
    """Plain attention, blocks and stacks always return one Tensor; residual attention is its own encoder."""
    cfg = CoreConfig(d_model=16, n_layers=2, n_heads=2, residual_attention=True)
    plain, residual = build.encoder(CoreConfig(d_model=16, n_layers=2, n_heads=2)), build.encoder(cfg)
    assert isinstance(residual, ResidualAttentionEncoder) and not isinstance(plain, ResidualAttentionEncoder)
    x = torch.randn(2, 5, 16)
    assert isinstance(plain.blocks[0](x), torch.Tensor) and isinstance(plain.blocks[0].attn(x), torch.Tensor)
    out, scores = residual.blocks[0](x)
    assert out.shape == x.shape and scores.shape == (2, 2, 5, 5)
    assert isinstance(residual(x), torch.Tensor)


def _code_of_core():
    for path in sorted(CORE.glob("*.py")):
        yield path, ast.parse(path.read_text())


def test_the_core_imports_nothing_else_of_the_package():
    for path, tree in _code_of_core():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1 and not (node.module or "").startswith("xformer"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("xformer") for a in node.names), path.name


def test_the_core_never_branches_on_a_modality():
    """No string in the core's code names a kind of data (docstrings may cite the papers)."""
    words = ("text", "image", "vision", "series", "token_ids", "pixel", "patch")
    for path, tree in _code_of_core():
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not any(w in node.value.lower() for w in words), (path.name, node.value)
            if isinstance(node, ast.Name):
                assert "modality" not in node.id.lower(), (path.name, node.id)
