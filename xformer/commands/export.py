"""`xformer export RUN_DIR --format hf|timm|onnx --out DIR [--checkpoint best|last|step_N] [--overwrite]`.

Rebuilds the run's model as `xformer evaluate` does (best checkpoint by default) and writes it for
another library (xformer/interop/export.py): a Hugging Face folder, a timm checkpoint, an ONNX graph.
Everything is checked before DIR is touched; DIR must be new or empty unless --overwrite (then the
old folder is moved aside and restored if the export fails).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import ConfigError
from ..folders import not_a_run_folder

# names of a model file: an --out so named would be a folder of that name (which onnxruntime or timm cannot open)
FILE_SUFFIXES = (".onnx", ".pth", ".pt", ".safetensors", ".bin", ".ckpt", ".json")


def run(args: argparse.Namespace) -> None:
    from ..folders import OutputFolder, check_outside_data, write_atomically
    from ..interop.export import check_exportable, export_model
    from ..train.run import load_run_model, run_checkpoint

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{not_a_run_folder(run_dir)}; give the --out folder of xformer train")
    if Path(args.out).suffix.lower() in FILE_SUFFIXES and not Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out}: export writes a folder (the model's files and export.json), not "
                          f"one file; give a folder name, e.g. --out {Path(args.out).with_suffix('')}_{args.format}")
    if run_dir.resolve().is_relative_to(Path(args.out).resolve()):
        raise ConfigError(f"--out {args.out} would hold the run folder itself; give a folder of its own")
    check_outside_data(args.out, "--out", [run_dir])  # an image folder run's data: a class of the next run
    out = OutputFolder(args.out, args.overwrite, what="export", marker="export.json")
    checkpoint = run_checkpoint(run_dir, args.checkpoint)
    _, model = load_run_model(run_dir, args.checkpoint)
    check_exportable(model, args.format)  # refused in one line before anything is written
    out.replace()
    try:
        report = export_model(model, args.format, out.path, run_dir)
        report = {"format": args.format, "run": str(run_dir.resolve()), "checkpoint": checkpoint.name,
                  "weights": _weights(checkpoint), **report}
        write_atomically(out.path / "export.json", json.dumps(report, indent=1) + "\n")
    except BaseException:
        out.failed()
        raise
    out.started()
    print(json.dumps(report, indent=1))
    print(f"exported {run_dir} ({checkpoint.name}) as {args.format} to {out.path}", file=sys.stderr)


def _weights(checkpoint: Path) -> str:
    """Which of the checkpoint's files was written: the moving average where it holds one, as evaluate reads
    (``read_eval_weights``), so that export.json says it and the file can be told from model.safetensors."""
    from ..train.checkpoint import EMA_FILE, MODEL_FILE

    if (checkpoint / EMA_FILE).is_file():
        return f"{EMA_FILE} (the moving average of the weights, train.ema)"
    return MODEL_FILE


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a run's model as a Hugging Face folder, a timm checkpoint or an ONNX graph",
        description="Rebuild the model of RUN_DIR (best checkpoint, or --checkpoint) and write it to --out: "
                    "hf: config.json + model.safetensors that transformers' from_pretrained loads (GPT-2-shaped "
                    "decoders, bias-free ones with zero biases; BERT masked-LM encoders and text classifiers), with "
                    "the run's "
                    "tokenizer files; timm: model.safetensors under timm's names + config.json (ViT classifiers; "
                    "timm.create_model('local-dir:DIR', pretrained=True)); onnx: model.onnx for any transformer "
                    "run, run with onnxruntime against the PyTorch model. What a format cannot express is "
                    "refused in one line naming it. Also writes export.json (what was written and checked).",
        epilog="example: xformer export runs/shakespeare --format hf --out exported/shakespeare_gpt2")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", required=True, choices=("hf", "timm", "onnx"), help="the target format")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder for the exported files")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint: best (default; the one metrics.json describes), last, or step_N")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out when it already holds files (the old folder comes back if the export fails)")
    p.set_defaults(func=run)
