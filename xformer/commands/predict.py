"""`xformer predict RUN_DIR INPUTS... [--top-k 5] [--out preds.csv] [--ensemble RUN_DIR ...]`: classify new image
files, texts with a text classifier's run, or series (UCR text files, .ts, .npz) with a series classifier's run (or
with the ensemble of several runs: probabilities averaged); with a masked LM's run, fill the [MASK]s of texts
(Hugging Face's fill-mask pipeline: xformer/predict_fill.py).

Writes CSV (file, class, probability, then class_1, probability_1, ... class_k, probability_k; texts: file is
FILE:ROW and the text follows it; series of labelled files and tables holding the run's label column: the label
follows, and the accuracy, balanced accuracy and macro F1 over them go to standard error) to --out (a new file,
or with --overwrite one replaced whole, never half-written; never an input or a file of the run) or standard
output. See xformer/predict.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError


def run(args: argparse.Namespace) -> None:
    from ..data.compressed import compressed_as_named
    from ..folders import check_distinct_runs, check_outside_data, output_file, write_atomically
    from ..predict import predict_run, read_class_names, text_classifier_info
    from ..predict_series import label_score
    from ..train.distributed import pick_device

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    runs = [args.run_dir, *(args.ensemble or [])]
    check_distinct_runs(runs)
    if args.out is not None:
        output_file(args.out, "--out", args.overwrite, inputs=args.inputs, runs=runs)
        check_outside_data(args.out, "--out", runs)  # in an image folder run's data it would be read as data
    device = pick_device(args.device, "--device")
    rows, table = predict_run(runs, args.inputs, args.top_k, args.batch_size, device, args.checkpoint)
    if any("label" in row for row in rows):  # labelled series or texts: sktime's score(X, y)
        text = text_classifier_info(Path(args.run_dir))
        names = text["names"] if text else read_class_names(Path(args.run_dir) / "classes.json")
        print(label_score(rows, names, "texts" if text else "series"), file=sys.stderr)
    if args.out:
        write_atomically(args.out, compressed_as_named(args.out, table))
        print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    else:
        write_stdout(table)


def write_stdout(text: str) -> None:
    """``text`` on standard output, a file name that is not UTF-8 as its own bytes (what ``write_atomically`` puts
    in --out), where a UTF-8 terminal's strict encoder would stop at it with a traceback."""
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode(sys.stdout.encoding or "utf-8", "surrogateescape"))
        sys.stdout.buffer.flush()


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="classify image files (or texts, or series) with a trained classifier, or fill the [MASK]s "
        "of texts with a masked LM; CSV of top-k classes or tokens",
        description="Rebuild the image classifier of RUN_DIR (best checkpoint), read each image file (folders: "
                    "every image inside, sorted), preprocess it as the run's evaluation images were (size, "
                    "channels, mean/std from RUN_DIR/preprocess.json) and write file, top-1 class and "
                    "probability, then the top-k classes and probabilities, as CSV. For a text classifier's run "
                    "(text_classification) the inputs are texts: .csv / .tsv / .jsonl / .parquet files (the run's text "
                    "column; a table holding the run's label column has its labels kept and scored), text files "
                    "(one text per line) or - (standard input); each row also holds the text. For a "
                    "series classifier's run (series_classification) they are series: UCR text files (a label and "
                    "the values per line, or the values alone), .ts files or .npz files (X), scaled as the run's "
                    "training series; rows are FILE:N, and a labelled file's labels are kept and scored. RUN_DIR "
                    "may also be a Hugging Face classifier folder "
                    "(BertForSequenceClassification: texts; ViTForImageClassification: images, with its "
                    "preprocessor_config.json). Fill-mask: for a masked LM's run (head masked_lm, e.g. "
                    "tasks/bert_mlm.yaml) or a BertForMaskedLM folder, each text holds the mask token [MASK] once or "
                    "more, and the top-k tokens of each mask are written a row each: file, text, mask (1 = the "
                    "first), rank, token, token_id, probability and sequence (the text filled), as Hugging Face's "
                    "pipeline('fill-mask') gives them. The texts are those files, or texts given themselves "
                    "('the [MASK] sat on the mat').",
        epilog="examples: xformer predict runs/vit_flowers photos/ --top-k 3 --out preds.csv; "
               "echo 'a fine film' | xformer predict runs/reviews -; "
               "xformer predict runs/bert_mlm 'the [MASK] sat on the mat' --top-k 3")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_TEXTS")
    p.add_argument("--top-k", "--topk", type=int, default=5,  # --topk: timm's inference.py
                   help="classes listed per input, or tokens per [MASK] (default 5)")
    p.add_argument("--out", metavar="FILE.csv", help="where to write the predictions (default: standard output)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never an input or a file "
                   "of the run folder)")
    p.add_argument("--batch-size", type=int, default=64, help="inputs per forward pass (default 64)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--ensemble", nargs="+", metavar="RUN_DIR", help="other runs of the same task and data (seeds, or a "
                   "CNN beside a ViT): their class probabilities are averaged with RUN_DIR's")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint (default best)")
    p.set_defaults(func=run)
