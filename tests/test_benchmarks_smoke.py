"""benchmarks/reference.py --quick runs end to end (one model, 2 pairs) and gpu_check.sh stops cleanly without CUDA."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_reference_quick_gpt2(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "reference.json"
    subprocess.run([sys.executable, "benchmarks/reference.py", "--quick", "--models", "gpt2", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    result = json.loads(out.read_text())
    assert result["matmul_peak_gflops"]["fp32"] > 0
    assert [r["pair"] for r in result["rows"]] == ["xformer vs reference", "xformer vs xformer (noise floor)"]
    assert all(r["ratio_b_over_a"] > 0 and r["flops_per_step"] > 0 for r in result["rows"])


def test_activation_checkpointing_benchmark_runs_small(tmp_path):
    out = tmp_path / "ac.json"
    subprocess.run([sys.executable, "benchmarks/activation_checkpointing.py", "--layers", "2", "--d-model", "32",
                    "--block", "16", "--batch", "2", "--pairs", "1", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    rows = json.loads(out.read_text())["rows"]
    assert rows["plain (again)"]["memory_ratio"] == 1 and rows["recomputed"]["memory_ratio"] < 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-CUDA path only")
def test_generate_stream_benchmark_runs_small():
    proc = subprocess.run([sys.executable, "benchmarks/generate_stream.py", "--tiny", "--tokens", "20", "--pairs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "20 tokens, 12,640 parameters, 1 pairs" in proc.stdout and "self-vs-self" in proc.stdout, proc.stdout


def test_gpu_check_without_cuda_says_so_in_one_line():
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.strip().count("\n") == 0 and "no CUDA device" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-CUDA path only")
def test_gpu_train_check_without_cuda_says_so_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/gpu_train_check.py", "--out", str(tmp_path / "r.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == ""
    assert proc.stdout.strip().count("\n") == 0 and "no CUDA device" in proc.stdout
    assert not (tmp_path / "r.json").exists()


def trained_lsa_prototype(out: Path, *flags: str) -> dict:
    """The weights of 20 steps of tasks/cct_digits.yaml under benchmarks/lsa_prototype.py ``flags``."""
    from safetensors.torch import load_file

    proc = subprocess.run([sys.executable, "benchmarks/lsa_prototype.py", *flags, "train", "tasks/cct_digits.yaml",
                           "train.steps=20", "train.eval_every=20", "train.warmup_steps=2", "--threads", "1",
                           "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return load_file(next(out.glob("checkpoints/*/model.safetensors")))


def test_the_lsa_prototype_trains_with_a_temperature_per_layer_and_no_self_attention(tmp_path):
    weights = trained_lsa_prototype(tmp_path / "lsa")
    scales = {k: float(v) for k, v in weights.items() if k.endswith("lsa_log_scale")}
    assert len(scales) == 2 and any(s != 0.0 for s in scales.values()), scales  # one per layer, trained

    # the patched attention never lets a token see itself
    patched = subprocess.run([sys.executable, "-c", (
        "import runpy, sys, torch; sys.argv = ['x', '--help']\n"
        "try: runpy.run_path('benchmarks/lsa_prototype.py', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "from xformer.core import SelfAttention\n"
        "a = SelfAttention(8, 2)\n"
        "q = k = torch.randn(1, 2, 5, 4)\n"
        "m = torch.ones(1, 1, 5, 5, dtype=torch.bool)\n"
        "v = torch.eye(5).expand(1, 2, 5, 5)  # so the output rows are the attention weights\n"
        "out = a._attend(q, k, v, m, False)\n"
        "print(float(out.diagonal(dim1=-2, dim2=-1).abs().max()))")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert patched.returncode == 0, patched.stderr[-2000:]
    assert float(patched.stdout.strip().splitlines()[-1]) == 0.0


def test_the_lsa_prototype_per_head_learns_one_scale_per_head_from_the_references_start(tmp_path):
    """--per-head is the authors' form (aanna0701/SPT_LSA_ViT models/vit.py): a scale per head, d_k^-1/2 at first."""
    weights = trained_lsa_prototype(tmp_path / "lsa", "--per-head")
    scales = {k: v for k, v in weights.items() if k.endswith("lsa_scale")}
    assert len(scales) == 2 and all(v.shape == (4,) for v in scales.values()), scales  # 2 layers x 4 heads
    start = 16 ** -0.5  # d_model 64 / 4 heads
    assert all(not torch.allclose(v, torch.full((4,), start)) for v in scales.values())  # trained
    assert all(torch.allclose(v, torch.full((4,), start), rtol=0.2) for v in scales.values())  # from d_k^-1/2


def test_the_cct_layer_prototype_normalises_the_stream_between_its_sub_layers():
    """x = x + Attn(LN0(x)); x = LN1(x); x = x + FFN(x): CCT's TransformerEncoderLayer, not the pre-norm block."""
    patched = subprocess.run([sys.executable, "-c", (
        "import runpy, sys, torch; sys.argv = ['x', '--help']\n"
        "from xformer.core import CoreConfig, build\n"
        "torch.manual_seed(0)\n"
        "block = build.encoder(CoreConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16)).blocks[0].eval()\n"
        "x = torch.randn(2, 5, 8)\n"
        "pre_norm = block(x)\n"
        "try: runpy.run_path('benchmarks/cct_layer_prototype.py', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "h = x + block.attn(block.res1.norm(x), None)\n"
        "h = block.res2.norm(h)\n"
        "cct = h + block.mlp(h)\n"
        "print(float((block(x) - cct).abs().max()), float((pre_norm - cct).abs().max()))")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert patched.returncode == 0, patched.stderr[-2000:]
    to_cct, to_pre_norm = map(float, patched.stdout.strip().splitlines()[-1].split())
    assert to_cct < 1e-6 < 1e-2 < to_pre_norm


@pytest.mark.parametrize("script, folder", [("vit_digits.py", "bench-s0"), ("etth1.py", "bench-dlinear-96"),
                                            ("char_gpt_shakespeare.py", "bench-lr1e-3")])
def test_benchmarks_refuse_a_run_folder_left_by_an_earlier_run_before_any_work(tmp_path, script, folder):
    old = tmp_path / folder
    old.mkdir()
    (old / "metrics.json").write_text("{}")
    args = {"vit_digits.py": ["--seeds", "0"], "etth1.py": ["--models", "dlinear", "--horizons", "96"]}.get(script, [])
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", *args, "--out", str(tmp_path / "bench"),
                           "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr[-2000:]
    assert f"{old} already exists" in proc.stderr and "--overwrite" in proc.stderr
    assert (old / "metrics.json").read_text() == "{}"


def test_gpu_check_refuses_an_unknown_part_in_one_line():
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PARTS": "correctness speed"})
    assert proc.returncode == 2 and proc.stderr == ""
    assert proc.stdout.strip().count("\n") == 0 and "unknown part 'speed'" in proc.stdout
