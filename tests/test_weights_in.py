"""A user's own pretrained weights, as transformers and timm save them, read by ``init_from: hf:`` / ``timm:``: each
file either loads exactly (the library's own logits on the same input) or is refused in one line naming the fix,
never read partly without saying so. Every checkpoint is built here, tiny, random init; nothing is downloaded.

Defects fixed here: a timm file with fc_norm and a class token was read as average-pooled (wrong logits for
``fc_norm=True``, timm's class-token pooling); a distilled DeiT was refused with advice about the image size; a
DDP file's ``module.`` names were stripped from pickles only, not from .safetensors; a head-less timm backbone
(``num_classes=0``) could not be fine-tuned; a GPT-2 folder's task layer (GPT2ForSequenceClassification's
``score``) went unread without a word."""
from __future__ import annotations

import pytest
import torch
import yaml

from xformer.cli import main
from xformer.errors import ConfigError
from xformer.interop.pretrained import load_pretrained, load_source

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY_VIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
TINY_TRAIN = {"steps": 1, "batch_size": 8, "lr": 1e-9, "warmup_steps": 0, "eval_every": 1, "log_every": 1}


def _vit(name="vit_small_patch16_224", **kwargs):
    vit = timm.create_model(name, pretrained=False, **{**TINY_VIT, **kwargs})
    with torch.no_grad():  # timm zero-initialises the head and biases: make every weight matter
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return vit.eval()


def _save(state: dict, path) -> str:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return str(path)


def _same_logits(model, vit):
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model({"images": images})["logits"], vit(images), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [
    {}, {"class_token": False, "global_pool": "avg"}, {"reg_tokens": 4}, {"no_embed_class": True},
    {"no_embed_class": True, "reg_tokens": 4}, {"class_token": False, "global_pool": "avg", "fc_norm": False},
], ids=["plain", "avg_no_class_token", "registers", "no_embed_class", "no_embed_class_registers", "gap_no_fc_norm"])
def test_timm_variants_load_with_timms_logits(kwargs, tmp_path):
    """gap_no_fc_norm (timm's reg4_gap models: no class token, no fc_norm) was refused as not fitting."""
    vit = _vit(**kwargs)
    path = _save(vit.state_dict(), tmp_path / "vit.safetensors")
    _same_logits(load_pretrained(f"timm:{path}#vit_small_patch16_224,num_heads=2")[0], vit)


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module.", "state_dict+module.", "safetensors module."])
def test_training_checkpoints_and_ddp_names_load_as_timm_load_checkpoint_does(wrap, tmp_path):
    vit = _vit()
    state = vit.state_dict()
    if "module." in wrap:
        state = {f"module.{k}": v for k, v in state.items()}
    if wrap.startswith("state_dict"):
        state = {"state_dict": state, "epoch": 3}
    elif wrap == "model":
        state = {"model": state, "optimizer": {}}
    path = _save(state, tmp_path / ("vit.safetensors" if wrap.startswith("safetensors") else "vit.pth"))
    _same_logits(load_pretrained(f"timm:{path}#vit_small_patch16_224,num_heads=2")[0], vit)


def test_a_checkpoint_of_timms_train_py_loads_without_unpickling_code(tmp_path):
    """timm's train.py saves {'arch', 'epoch', 'state_dict', 'optimizer', 'args': argparse.Namespace, ...}: the
    Namespace, plain data, is allowed to torch.load(weights_only=True); it was refused as not plain tensors."""
    import argparse

    vit = _vit()
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 3, "arch": "vit_small_patch16_224", "state_dict": vit.state_dict(), "optimizer": {},
                "args": argparse.Namespace(lr=1e-3, model="vit_small_patch16_224"), "version": 2, "metric": 80.0}, path)
    _same_logits(load_pretrained(f"timm:{path}#vit_small_patch16_224,num_heads=2")[0], vit)


def test_fc_norm_with_a_class_token_is_read_as_said_and_refused_when_unsaid(tmp_path):
    """timm pools a ViT with fc_norm and a class token through the class token (fc_norm=True) or by averaging
    (global_pool='avg'): the tensors are the same, so the pooling must be said; it was taken to be 'avg'."""
    for pool, vit in (("token", _vit(fc_norm=True)), ("avg", _vit(global_pool="avg"))):
        path = _save(vit.state_dict(), tmp_path / f"{pool}.safetensors")
        with pytest.raises(ConfigError, match=r"global_pool=avg or #vit_small_patch16_224,global_pool=token") as e:
            load_pretrained(f"timm:{path}#vit_small_patch16_224,num_heads=2")
        assert "\n" not in str(e.value)
        _same_logits(load_pretrained(f"timm:{path}#vit_small_patch16_224,num_heads=2,global_pool={pool}")[0], vit)


def test_a_distilled_deit_is_refused_in_one_line_naming_its_second_token(tmp_path):
    vit = _vit("deit_tiny_distilled_patch16_224")
    path = _save(vit.state_dict(), tmp_path / "deit.safetensors")
    with pytest.raises(ConfigError, match=r"distilled DeiT .*dist_token.*deit_tiny_patch16_224") as e:
        load_pretrained(f"timm:{path}#deit_tiny_distilled_patch16_224,num_heads=2")
    assert "\n" not in str(e.value) and "img_size" not in str(e.value)


def test_a_headless_timm_backbone_loads_with_its_head_untrained_and_fine_tunes(tmp_path, capsys):
    """timm.create_model(..., num_classes=0) is how backbones are shared: the encoder is read, the head is left
    untrained as transformers' ViTForImageClassification does for a ViTModel folder."""
    vit = _vit(num_classes=0)
    path = _save(vit.state_dict(), tmp_path / "backbone.safetensors")
    with pytest.warns(UserWarning, match="head.fc"):
        model, _ = load_pretrained(f"timm:{path}#vit_small_patch16_224,num_heads=2")
    assert model.untrained == {"head.fc.weight", "head.fc.bias"}
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model.run_core(model.tokenizer({"images": images}))
        torch.testing.assert_close(ours, vit.forward_features(images), atol=1e-5, rtol=1e-4)

    small = _vit(img_size=8, patch_size=2, in_chans=1, num_classes=0)
    path = _save(small.state_dict(), tmp_path / "digits_backbone.safetensors")
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump({"model": {"architecture": "encoder", "head": {"name": "classification"}},
                                      "data": {"name": "digits"}, "train": TINY_TRAIN}))
    argv = ["train", str(recipe), "--init-from", f"timm:{path}#vit_small_patch16_224,num_heads=2",
            "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 0
    assert "left fresh: head.fc;" in capsys.readouterr().out


def test_a_gpt2_folders_task_layer_is_named_as_not_read(tmp_path, capsys):
    """GPT2ForSequenceClassification: its transformer is a GPT-2 (tied, as GPT2LMHeadModel.from_pretrained reads it,
    with the same logits), its ``score`` layer no xformer head: init_from's summary and predict say so."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=60, n_positions=32, n_embd=32, n_layer=2, n_head=2, num_labels=2,
                                     pad_token_id=0)
    transformers.GPT2ForSequenceClassification(config).save_pretrained(tmp_path / "cls")
    pre = load_source(f"hf:{tmp_path / 'cls'}")
    assert pre.unread == {"score": "sequence classifier"}
    reference = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "cls").eval()
    ids = torch.randint(0, 60, (2, 7))
    with torch.no_grad():
        got = load_pretrained(f"hf:{tmp_path / 'cls'}")[0]({"input_ids": ids})["logits"]
        torch.testing.assert_close(got, reference(input_ids=ids).logits, atol=1e-5, rtol=1e-4)

    assert load_source(f"hf:{_gpt2_lm(tmp_path)}").unread == {}  # an LM folder has nothing unread
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "cls"), "a text"]) == 2
    assert "its score is a sequence classifier" in capsys.readouterr().err


def _gpt2_lm(tmp_path):
    transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=60, n_positions=32, n_embd=32, n_layer=2,
                                                         n_head=2)).save_pretrained(tmp_path / "lm")
    return tmp_path / "lm"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_precision_folder_gives_transformers_logits_in_float32(dtype, tmp_path):
    """A folder saved in float16 / bfloat16: transformers (dtype auto) computes in that precision, xformer in float32
    on the same (rounded) weights, which is transformers' model cast to float32."""
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=60, n_positions=32, n_embd=32, n_layer=2,
                                                                 n_head=2)).to(dtype)
    model.save_pretrained(tmp_path / "half")
    reference = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "half").float().eval()
    ours, _ = load_pretrained(f"hf:{tmp_path / 'half'}")
    assert all(p.dtype == torch.float32 for p in ours.parameters())
    ids = torch.randint(0, 60, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours({"input_ids": ids})["logits"], reference(input_ids=ids).logits,
                                   atol=1e-5, rtol=1e-4)
