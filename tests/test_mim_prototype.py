"""benchmarks/mim_prototype.py: the cell decoder undoes the cell layout, the mask covers the cells it says, the
pre-training reads masked pixels only, and its checkpoint is one ``init_from`` fine-tunes from."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def prototype():
    spec = importlib.util.spec_from_file_location("mim_prototype", ROOT / "benchmarks" / "mim_prototype.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cell_decoder_puts_each_tokens_pixels_back_in_its_cell():
    mim = prototype()
    images = torch.randn(2, 3, 8, 12)
    cells = F.unfold(images, (2, 3), stride=(2, 3)).transpose(1, 2)  # (B, 4 * 4, 3 * 2 * 3): (C, ch, cw) per cell
    decoder = mim.CellDecoder(18, 3, (2, 3))
    with torch.no_grad():
        decoder.proj.weight.copy_(torch.eye(18))
        decoder.proj.bias.zero_()
    assert torch.equal(decoder(cells, (4, 4)), images)


def test_the_mask_holds_the_same_number_of_cells_in_every_image():
    mim = prototype()
    mask = mim.random_cell_mask(64, (4, 4), 0.5, torch.Generator().manual_seed(0))
    assert mask.shape == (64, 16) and mask.dtype == torch.bool
    assert (mask.sum(1) == 8).all() and len({tuple(m.tolist()) for m in mask}) > 32  # drawn per image
    assert (mim.random_cell_mask(3, (2, 2), 0.01, torch.Generator()).sum(1) == 1).all()  # at least one


def test_pretraining_writes_a_checkpoint_that_init_from_fine_tunes_from(tmp_path, capsys):
    pre = tmp_path / "pre"
    proc = subprocess.run([sys.executable, "benchmarks/mim_prototype.py", "tasks/cct_digits.yaml",
                           "model.tokenizer.args.positions=learned", "train.warmup_steps=2", "--steps", "20",
                           "--out", str(pre)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((pre / "pretrain.json").read_text())
    assert summary["grid"] == [4, 4] and summary["cell"] == [2, 2] and summary["steps"] == 20
    assert "step 20: L1 on masked pixels" in proc.stdout and 0 < summary["final_loss"] < 1  # digits are in [0, 1]
    with pytest.raises(SystemExit) as refused:  # an earlier pre-training is never overwritten
        prototype().main(["tasks/cct_digits.yaml", "--steps", "1", "--out", str(pre)])
    assert refused.value.code == 2 and "already exists" in capsys.readouterr().err

    run = subprocess.run([sys.executable, "-m", "xformer", "train", "tasks/cct_digits.yaml",
                          "model.tokenizer.args.positions=learned", f"init_from={pre}", "train.steps=4",
                          "train.eval_every=4", "train.warmup_steps=1", "--threads", "1", "--out", str(tmp_path / "ft"),
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = run.stdout + run.stderr
    assert "left fresh: head" in loaded and "not used from the checkpoint: none" in loaded, loaded[-2000:]
