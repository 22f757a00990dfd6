"""Mistakes a user meets on a GPU machine, tested on any machine (torch.cuda's answers replaced)."""
import pytest
import torch

from xformer.cli import main
from xformer.config import ConfigError
from xformer.train import distributed
from xformer.train.distributed import init_world


@pytest.fixture
def one_gpu(monkeypatch):
    """A machine with one GPU, whose second device ordinal must never be asked for."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def no_set_device(device):
        raise AssertionError(f"torch.cuda.set_device({device}) reached: CUDA's 'invalid device ordinal' traceback")

    monkeypatch.setattr(torch.cuda, "set_device", no_set_device)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: pytest.fail("process group joined"))


def test_more_torchrun_processes_than_gpus_is_one_line(one_gpu, monkeypatch):
    # torchrun --nproc_per_node 2 on a machine with one GPU: the second process was CUDA's traceback (seen on an
    # H200 by benchmarks/gpu_check.sh), and NCCL cannot put two ranks on one GPU anyway
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match=r"torchrun started process 1 of this machine, but it has 1 GPU\(s\): "
                                          r"use --nproc_per_node 1 \(one process per GPU\), or train.device=cpu"):
        init_world("cuda")


def test_the_command_says_it_in_one_line_with_status_2(one_gpu, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert main(["train", "tasks/copy.yaml", "train.device=cuda", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "use --nproc_per_node 1" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
