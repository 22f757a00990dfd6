"""WordPiece training: xformer's deterministic trainer against Hugging Face's ``WordPieceTrainer``.

    python benchmarks/wordpiece_training.py [--copies 1,10] [--pairs 5] [--vocab-size 8000] [--out FILE]
    RAYON_NUM_THREADS=1 python benchmarks/wordpiece_training.py --out ...   # Hugging Face's trainer on one thread

Both learn from tinyshakespeare (``../shared/data/tinyshakespeare.txt``, repeated ``--copies`` times), with
BERT's normaliser and pre-tokeniser and the same settings. The two alternate in one process (timing.py), so
both see the same machine load; medians, their ratio, and a self-against-self row of Hugging Face's trainer
(its two halves, interleaved) for the noise floor. Also counts how many distinct vocabularies each trainer
gave over the runs. Writes benchmarks/results/wordpiece_training.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import alternate  # noqa: E402

from xformer.data.vocab import SPECIAL_TOKENS  # noqa: E402
from xformer.data.wordpiece_training import bert_normalizer, train_wordpiece  # noqa: E402


def hugging_face(lines: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = bert_normalizer(True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.train_from_iterator(lines, trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##", show_progress=False))
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", default="1,10")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "wordpiece_training.json"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    args = parser.parse_args()
    text = Path(args.data).read_text(encoding="utf-8")
    rows = []
    for copies in map(int, args.copies.split(",")):
        lines = text.splitlines() * copies
        seen = {"xformer": set(), "hugging_face": set()}

        def ours():
            seen["xformer"].add(train_wordpiece(lines, args.vocab_size, 2, True, SPECIAL_TOKENS).to_str())

        def theirs():
            seen["hugging_face"].add(hugging_face(lines, args.vocab_size).to_str())

        ta, tb = alternate(ours, theirs, args.pairs)
        ha, hb = alternate(theirs, theirs, args.pairs)
        row = {"copies": copies, "megabytes": round(len(text.encode()) * copies / 1e6, 2),
               "xformer_s": statistics.median(ta), "hugging_face_s": statistics.median(tb),
               "ratio": statistics.median(ta) / statistics.median(tb),
               "self_ratio_hugging_face": statistics.median(ha) / statistics.median(hb),
               "distinct_vocabularies": {k: len(v) for k, v in seen.items()},
               "runs": {"xformer": args.pairs + 1, "hugging_face": 3 * args.pairs + 3}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({
        "vocab_size": args.vocab_size, "pairs": args.pairs, "machine": platform.platform(),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "RAYON_NUM_THREADS": os.environ.get("RAYON_NUM_THREADS"), "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
