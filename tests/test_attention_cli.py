"""`xformer attention RUN_DIR`: one PNG grid of a trained image run's attention."""
import subprocess
import sys

import pytest

from xformer.train.config import ExperimentConfig, TrainConfig, DataConfig
from xformer.models import ModelConfig, PartConfig
from xformer.core import CoreConfig
from xformer.train.run import train_run


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("vit")
    config = ExperimentConfig(
        model=ModelConfig("encoder", CoreConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32),
                          PartConfig("image_patches", {"patch_size": 2}), PartConfig("classification")),
        data=DataConfig("digits", {}),
        train=TrainConfig(steps=3, batch_size=16, eval_every=3, device="cpu"))
    train_run(config, run_dir)
    return run_dir


def cli(*args):
    return subprocess.run([sys.executable, "-m", "xformer", "attention", *map(str, args)], capture_output=True,
                          text=True)


def test_attention_writes_a_png_grid(vit_run, tmp_path, capsys):
    """In this process (the command's code is the same; the one-line errors below run the console script)."""
    from xformer.cli import main

    out = tmp_path / "grid.png"
    assert main(["attention", str(vit_run), "--index", "5", "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    width, height = Image.open(out).size
    assert height > width / 3  # 3 rows: image/rollout/overlay, then 2 layers of 2 heads


def test_attention_errors_are_one_line(vit_run, tmp_path, capsys):
    result = cli(vit_run, "--index", 100000)
    assert result.returncode == 2 and "outside the test split" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    from xformer.cli import main  # a folder that is no run: the same refusal, checked in this process

    assert main(["attention", str(tmp_path)]) == 2 and "not a run folder" in capsys.readouterr().err
