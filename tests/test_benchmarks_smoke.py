"""benchmarks/reference.py --quick runs end to end (one model, 2 pairs) and gpu_check.sh stops cleanly without CUDA."""
import json
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-CUDA path only")
def test_gpu_check_without_cuda_says_so_in_one_line():
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.strip().count("\n") == 0 and "no CUDA device" in proc.stdout
