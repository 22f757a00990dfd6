"""Prepare a WordPiece-tokenised corpus as token files (train.bin / val.bin), for `token_file` training.

    python data/wordpiece_corpus/prepare.py [FILES ...] [--tokenizer DIR | --vocab-size 8000] [--out DIR]
    python data/wordpiece_corpus/prepare.py --url https://example.org/corpus.txt --vocab-size 16000

Reads local UTF-8 text files (none: the Python Language Reference bundled with CPython, the project's
built-in corpus); downloads only when given --url (to OUT/input.txt). The text is cut by position as
`text_lm` cuts it (the last --val-fraction, then --test-fraction, at line breaks), WordPiece is learned
on the train part (or --tokenizer reuses a saved vocabulary: `xformer tokenizer train`, RUN_DIR/tokenizer)
and every paragraph is encoded followed by [EOS]; a saved vocabulary that keeps whitespace (the byte-level BPE
of a run fine-tuned from a GPT-2 folder) encodes the text as written instead, as nanoGPT's openwebtext
prepare.py does, GPT-2's <|endoftext|> between documents read as that token. Writes into OUT (default: this folder) train.bin,
val.bin [, test.bin] (uint16 ids up to a 65,536-piece vocabulary, else uint32), meta.json and tokenizer/.
The ids are written chunk by chunk; the text is held in memory once, while preparing only.

    xformer train tasks/wordpiece_gpt.yaml data.name=token_file data.args.path=data/wordpiece_corpus ...

--tokenizer RUN/tokenizer --val-fraction 1 writes an evaluation folder (val.bin, no train.bin) of a held-out text,
scored by `xformer evaluate RUN data.args.path=OUT`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if (ROOT / "xformer").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from xformer.data.corpus import corpus_name, read_text_files  # noqa: E402
from xformer.data.token_file import write_text_corpus  # noqa: E402
from xformer.data.download import download, run_script  # noqa: E402
from xformer.errors import UserError  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="UTF-8 text files (none: the built-in corpus)")
    parser.add_argument("--url", help="download a text file from URL first (only then is the network used)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: this folder)")
    parser.add_argument("--tokenizer", help="a folder holding a saved vocabulary to reuse instead of learning one")
    parser.add_argument("--vocab-size", type=int, help="pieces to learn (default 8000; not with --tokenizer)")
    parser.add_argument("--min-frequency", type=int, help="least count of a merged pair (default 2)")
    parser.add_argument("--no-lowercase", action="store_true", help="keep the case (default: lowercase)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.0)
    args = parser.parse_args(argv)
    files = [str(f) for f in args.files]
    if args.url:
        files.append(str(download(args.url, args.out / "input.txt")))
    if args.tokenizer and not Path(args.tokenizer).is_dir():
        raise UserError(f"--tokenizer {args.tokenizer} is not a folder; give a saved vocabulary "
                        "(xformer tokenizer train FILES --out DIR) or leave it out to learn one")
    text = read_text_files(files)
    meta = write_text_corpus(args.out, text, args.tokenizer or "wordpiece", args.vocab_size, args.min_frequency,
                             False if args.no_lowercase else None, args.val_fraction, args.test_fraction,
                             source=files or corpus_name())
    counts = ", ".join(f"{split} {n:,}" for split, n in meta["tokens"].items())
    print(f"{len(text):,} characters -> {counts} tokens; vocabulary of {meta['vocab_size']} ({meta['dtype']}) "
          f"-> {args.out}")
    return meta


if __name__ == "__main__":
    run_script(main)
