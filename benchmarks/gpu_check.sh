#!/usr/bin/env bash
# GPU check: one prepared script, under 10 minutes on one GPU (each part has its own time limit).
#
#   bash benchmarks/gpu_check.sh    # from anywhere; PYTHON=... picks the interpreter, DATA=... the folder holding
#                                   # tinyshakespeare.txt and ETTh1.csv (default ../shared/data), RESULTS=... where
#                                   # gpu_check.json and the parts' logs go (default benchmarks/results)
#   PARTS="correctness reference compile" bash benchmarks/gpu_check.sh   # a re-check: only the parts named
#                                   # (correctness = 1-4, reference = 5, large = 6, full = 7, compile = 8; default all)
#
# Correctness, all at once (one GPU holds them all; <= 210 s):
#  1. the parity tests (GPT-2, BERT, timm ViT, generation, torch.nn and PatchTST converters) on the GPU in fp32,
#     unchanged, through the pytest plugin benchmarks/gpu_parity.py (every tensor on cuda, TF32 off);
#  2. benchmarks/gpu_parity.py: GPT-2, BERT and ViT against transformers / timm on identical weights on the GPU,
#     fp32 (losses before and after one AdamW step) and bf16 autocast (error against fp32 no worse than the
#     reference's), greedy generation token for token;
#  3. the resume tests with the trainer on cuda (XFORMER_TEST_TRAIN_DEVICE=cuda, deterministic algorithms):
#     exact resumption after a crash, SIGKILL and Ctrl-C, with EMA, SAM and a distillation teacher;
#  4. benchmarks/gpu_train_check.py: recipes of every domain trained through the CLI on cuda (bf16; the GPT also
#     fp32), evaluated, and read back by generate / predict / forecast.
# Speed, one part at a time (nothing else on the GPU):
#  5. benchmarks/reference.py --device cuda --bf16: the reference benchmarks at their CPU sizes (small models:
#     launch- and Python-bound on a GPU), fp32 and bf16 autocast;
#  6. the same with --large: GPT-2 124M at 1,024 tokens, BERT-base at 512, ViT-B/16 at 224, 10 pairs;
#  7. gpu_train_check.py --part full: the char-level GPT recipe (bf16) and the digits CCT recipe (seeds 0-2)
#     trained to the end, timed from process start to exit;
#  8. reference.py --compile (torch.compile of both sides) for GPT-2 and ViT, when 100 s are left of 540.
# Everything lands in RESULTS/gpu_check.json with the GPU named (torch.cuda.get_device_name).
# Without a CUDA device it says so in one line and exits with status 2, having run nothing.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DATA=${DATA:-../shared/data}
RESULTS=${RESULTS:-benchmarks/results}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # xformer importable from the checkout, installed or not
PARTS=${PARTS:-correctness reference large full compile}
for part in $PARTS; do
    case $part in
        correctness|reference|large|full|compile) ;;
        *) echo "gpu_check: unknown part '$part' in PARTS: name some of correctness reference large full compile"
           exit 2 ;;
    esac
done
want() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device is present (torch.cuda.is_available() is False); nothing run"
    exit 2
fi
mkdir -p "$RESULTS"
TMP=$(mktemp -d)
start=$(date +%s)
left() { echo $((540 - $(date +%s) + start)); }
quiet() { grep -v '^\[transformers\]'; }
echo "gpu_check: $("$PY" -c 'import torch, transformers, timm; print(torch.cuda.get_device_name(), "torch",
    torch.__version__, "transformers", transformers.__version__, "timm", timm.__version__)' 2>&1 | tail -1)"

if want correctness; then
echo "== 1-4. correctness, at once (<= 210 s)"
XFORMER_TEST_DEVICE=cuda PYTHONPATH="benchmarks:$PYTHONPATH" timeout 150 "$PY" -m pytest -q -p gpu_parity \
    -p no:cacheprovider tests/test_hf_gpt2.py tests/test_hf_bert.py tests/test_vision_timm.py tests/test_generation.py \
    tests/test_interop_converters.py tests/test_torch_parity.py --junitxml="$TMP/parity_tests.xml" \
    >"$RESULTS/gpu_parity_tests.log" 2>&1 &
timeout 150 "$PY" benchmarks/gpu_parity.py --out "$TMP/parity.json" 2>&1 | quiet >"$RESULTS/gpu_parity.log" &
XFORMER_TEST_TRAIN_DEVICE=cuda timeout 210 "$PY" -m pytest -q -p no:cacheprovider tests/test_train_resume.py \
    tests/test_train_ema.py tests/test_train_sam.py tests/test_distill.py --junitxml="$TMP/resume_tests.xml" \
    >"$RESULTS/gpu_resume_tests.log" 2>&1 &
timeout 210 "$PY" benchmarks/gpu_train_check.py --data "$DATA" --out "$TMP/train_smoke.json" \
    >"$RESULTS/gpu_train_smoke.log" 2>&1 &
wait
for log in gpu_parity_tests gpu_parity gpu_resume_tests gpu_train_smoke; do
    echo "-- $log"; tail -8 "$RESULTS/$log.log" | cut -c1-400
done
fi

if want reference; then
    echo "== 5. reference benchmarks on cuda, CPU sizes (<= 100 s)"
    timeout 100 "$PY" benchmarks/reference.py --device cuda --bf16 --pairs 20 --out "$TMP/reference.json" 2>&1 \
        | quiet | tail -24
fi
if want large; then
    echo "== 6. reference benchmarks on cuda, base sizes (<= 120 s)"
    timeout 120 "$PY" benchmarks/reference.py --device cuda --bf16 --large --pairs 10 \
        --out "$TMP/reference_large.json" 2>&1 | quiet | tail -24
fi
if want full && [ "$(left)" -gt 30 ]; then
    echo "== 7. full recipes, timed (<= $(( $(left) < 150 ? $(left) : 150 )) s)"
    timeout $(( $(left) < 150 ? $(left) : 150 )) "$PY" benchmarks/gpu_train_check.py --part full \
        --data "$DATA" --out "$TMP/train_full.json" 2>&1 | tail -6
fi
if ! want compile; then
    :
elif [ "$(left)" -ge 100 ]; then
    echo "== 8. reference benchmarks with torch.compile (<= $(left) s)"
    timeout "$(left)" "$PY" benchmarks/reference.py --device cuda --bf16 --compile --pairs 10 --models gpt2,vit \
        --out "$TMP/reference_compile.json" 2>&1 | quiet | tail -10
else
    echo "== 8. torch.compile skipped: $(left) s left of 540"
fi

"$PY" - "$TMP" "$start" "$RESULTS" "$PARTS" <<'EOF'
import json, sys, time, xml.etree.ElementTree as ET
from pathlib import Path
import torch
tmp, start, results, parts = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4].split()
def read(name):
    p = tmp / name
    return json.loads(p.read_text()) if p.exists() else {"missing": f"{name} not written (timed out, failed, skipped)"}
def junit(name):
    if not (tmp / name).exists():
        return {"missing": f"{name} not written"}
    s = ET.parse(tmp / name).getroot()
    s = s if s.tag == "testsuite" else s.find("testsuite")
    out = {k: int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    for case in s.iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            out.setdefault("failed", []).append(f"{case.get('classname')}::{case.get('name')}: "
                                                f"{bad.get('message', '')[:300]}")
    return out
import timm, transformers
result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "transformers": transformers.__version__,
          "timm": timm.__version__,
          "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled(),
          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": int(time.time()) - start,
          "parts": parts,
          "parity_tests_fp32": junit("parity_tests.xml"), "parity_identical_weights": read("parity.json"),
          "resume_tests_cuda": junit("resume_tests.xml"), "train_smoke": read("train_smoke.json"),
          "reference_eager": read("reference.json"), "reference_large": read("reference_large.json"),
          "train_full": read("train_full.json"), "reference_compile": read("reference_compile.json")}
out = results / "gpu_check.json"
out.write_text(json.dumps(result, indent=1) + "\n")
print(f"gpu_check: wrote {out} ({result['seconds']} s)")
EOF
