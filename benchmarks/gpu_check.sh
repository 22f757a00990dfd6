#!/usr/bin/env bash
# GPU check (issue 19, part 4): one prepared script, under 10 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root or anywhere; PYTHON=... to pick an interpreter
#
# 1. the parity tests (GPT-2, BERT, timm ViT, generation, torch.nn and PatchTST converters) on the GPU in fp32,
#    unchanged, through the pytest plugin benchmarks/gpu_parity.py (every tensor on cuda, TF32 off);
# 2. benchmarks/gpu_parity.py: GPT-2, BERT and ViT against transformers / timm on identical weights on the GPU,
#    fp32 (losses before and after one AdamW step) and bf16 autocast (error against fp32 no worse than the
#    reference's), greedy generation token for token;
# 3. benchmarks/reference.py --device cuda --bf16: the reference benchmarks on the GPU (SDPA picks flash
#    attention for the bf16 causal/unmasked rows), fp32 and bf16 autocast, then again with torch.compile.
# Everything lands in benchmarks/results/gpu_check.json with the GPU named (torch.cuda.get_device_name).
# Without a CUDA device it says so in one line and exits with status 2, having run nothing.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device is present (torch.cuda.is_available() is False); nothing run"
    exit 2
fi
TMP=$(mktemp -d)
start=$(date +%s)
echo "gpu_check: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(), "torch", torch.__version__)')"

echo "== 1. parity tests on cuda, fp32 (pytest, <= 150 s)"
XFORMER_TEST_DEVICE=cuda PYTHONPATH=benchmarks timeout 150 "$PY" -m pytest -q -p gpu_parity -p no:cacheprovider \
    tests/test_hf_gpt2.py tests/test_hf_bert.py tests/test_vision_timm.py tests/test_generation.py \
    tests/test_interop_converters.py tests/test_torch_parity.py --junitxml="$TMP/pytest.xml" 2>&1 | tail -25
echo "pytest exit status ${PIPESTATUS[0]}"

echo "== 2. parity on identical weights, fp32 and bf16 (<= 120 s)"
timeout 120 "$PY" benchmarks/gpu_parity.py --out "$TMP/parity.json" 2>&1 | grep -v '^\[transformers\]' | tail -12

echo "== 3. reference benchmarks on cuda, eager (<= 150 s) and torch.compile (<= 150 s)"
timeout 150 "$PY" benchmarks/reference.py --device cuda --bf16 --pairs 20 --out "$TMP/reference.json" 2>&1 \
    | grep -v '^\[transformers\]' | tail -20
timeout 150 "$PY" benchmarks/reference.py --device cuda --bf16 --compile --pairs 20 --models gpt2,bert,vit \
    --out "$TMP/reference_compile.json" 2>&1 | grep -v '^\[transformers\]' | tail -12

"$PY" - "$TMP" "$start" <<'EOF'
import json, sys, time, xml.etree.ElementTree as ET
from pathlib import Path
import torch
tmp, start = Path(sys.argv[1]), int(sys.argv[2])
def read(name):
    p = tmp / name
    return json.loads(p.read_text()) if p.exists() else {"missing": f"{name} not written (timed out or failed)"}
pytest = {"missing": "pytest.xml not written"}
if (tmp / "pytest.xml").exists():
    s = ET.parse(tmp / "pytest.xml").getroot()
    s = s if s.tag == "testsuite" else s.find("testsuite")
    pytest = {k: int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    pytest["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in s.iter("testcase")
                        if c.find("failure") is not None or c.find("error") is not None]
result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
          "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled(),
          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": int(time.time()) - start,
          "parity_tests_fp32": pytest, "parity_identical_weights": read("parity.json"),
          "reference_eager": read("reference.json"), "reference_compile": read("reference_compile.json")}
out = Path("benchmarks/results/gpu_check.json")
out.write_text(json.dumps(result, indent=1) + "\n")
print(f"gpu_check: wrote {out} ({result['seconds']} s)")
EOF
