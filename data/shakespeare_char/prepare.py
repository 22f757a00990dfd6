"""Prepare tinyshakespeare for character-level language modelling, as nanoGPT's data/shakespeare_char.

    python data/shakespeare_char/prepare.py [INPUT.txt] [--out DIR] [--val-fraction 0.1]
    python data/shakespeare_char/prepare.py --url https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt

Reads a local text file (default: ../shared/data/tinyshakespeare.txt beside the repository, else
input.txt in this folder); downloads only when given --url (to OUT/input.txt). Writes into OUT
(default: this folder) train.bin and val.bin (uint16 ids: every character of the whole text, 65 for
tinyshakespeare; the first 90% of the characters train, the rest validation), meta.json (dtype,
vocab_size, chars, token and character counts) and tokenizer/. Train on it with

    xformer train tasks/char_gpt_shakespeare.yaml data.name=token_file data.args.path=data/shakespeare_char ...

(the `token_file` dataset: the same windows and ids as `text_lm` on the text, read from disk). A held-out text
to score a trained run on, read with the run's characters, into an evaluation folder (val.bin, no train.bin):

    python data/shakespeare_char/prepare.py held.txt --tokenizer RUN/tokenizer --val-fraction 1 --out data/held
    xformer evaluate RUN data.args.path=data/held
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if (ROOT / "xformer").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from xformer.data.corpus import read_text_files  # noqa: E402
from xformer.data.token_file import write_text_corpus  # noqa: E402
from xformer.data.download import download, run_script  # noqa: E402
from xformer.errors import UserError  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", help="a UTF-8 text file (default: the shared tinyshakespeare.txt, "
                                                 "else input.txt in this folder)")
    parser.add_argument("--url", help="download the text from URL first (only then is the network used)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: this folder)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="1: an evaluation folder (needs --tokenizer)")
    parser.add_argument("--tokenizer", default="char", help="a saved vocabulary to read the text with, e.g. a run's "
                                                            "RUN/tokenizer (default: the text's own characters)")
    args = parser.parse_args(argv)
    if args.url:
        source = download(args.url, args.out / "input.txt")
    elif args.input:
        source = Path(args.input)
    else:
        source = SHARED if SHARED.is_file() else HERE / "input.txt"
        if not source.is_file():
            raise UserError(f"no input text: neither {SHARED} nor {HERE / 'input.txt'} exists; give a file or --url")
    text = read_text_files(source)
    if args.tokenizer != "char" and not Path(args.tokenizer).is_dir():
        raise UserError(f"--tokenizer {args.tokenizer} is not a folder; give a saved vocabulary (a run's "
                        "RUN/tokenizer)")
    meta = write_text_corpus(args.out, text, args.tokenizer, val_fraction=args.val_fraction, source=str(source))
    print(f"{source}: {len(text):,} characters, vocabulary of {meta['vocab_size']} ({meta['dtype']}); "
          f"train {meta['tokens'].get('train', 0):,} tokens, val {meta['tokens'].get('val', 0):,} -> {args.out}")
    return meta


if __name__ == "__main__":
    run_script(main)
