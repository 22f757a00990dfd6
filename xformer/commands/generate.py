"""`xformer generate RUN_DIR --prompt "..." | --prompt-file FILE | --prompts-file FILE [--stop S] [--out F.jsonl]`:
continue a prompt (or each of several, in batches: xformer/generate_many.py) with a trained text run.

Loads the model from RUN_DIR (config.yaml + best, else latest, checkpoint, or --checkpoint) and the
vocabulary from RUN_DIR/tokenizer, then samples (default), decodes greedily
(--greedy) or runs beam search (--num-beams > 1); see xformer/generation/.
RUN_DIR may also be a local Hugging Face GPT-2 folder (config.json, model.safetensors or
pytorch_model.bin, and its tokenizer files): its weights and its own tokenizer are used
(``xformer.interop.pretrained.load_pretrained``).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..config import ConfigError, load_yaml
from ..errors import a_or_an


def load_text_model(run_dir: str | Path, checkpoint: str = "best"):
    """(model, vocab) of a text run (the weights of ``checkpoint``: best, last or step_N), without rebuilding its
    data: config.yaml already holds the data-implied model arguments, so the text files (and a WordPiece
    re-training) are not needed."""
    from ..data.vocab import META_FILE, load_vocab
    from ..train.run import load_run_model

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() and (run_dir / "config.json").is_file():
        if checkpoint != "best":
            raise ConfigError(f"--checkpoint {checkpoint}: {run_dir} is a Hugging Face folder, which holds one set of "
                              "weights; leave --checkpoint out")
        return load_hf_text_model(run_dir)
    if (run_dir / "config.yaml").is_file() and not (run_dir / "tokenizer" / META_FILE).is_file():
        data = (load_yaml(run_dir / "config.yaml").get("data") or {}).get("name")
        what = (f"is a forecaster's run, which writes no text (xformer forecast {run_dir} --data FILE forecasts)"
                if data in ("ett", "csv_series", "forecaster") else
                f"is a classifier's run, which writes no text (xformer predict {run_dir} INPUTS gives its classes)"
                if (run_dir / "classes.json").is_file() else f"has no saved tokenizer (tokenizer/{META_FILE})")
        raise ConfigError(f"{run_dir} {what}; generate needs a text run (data text_lm or another text dataset)")
    _, model = load_run_model(run_dir, checkpoint)
    return model, load_vocab(run_dir / "tokenizer")


def load_hf_text_model(folder: Path):
    """(model, vocab) of a Hugging Face GPT-2 folder, with the folder's own tokenizer."""
    from ..interop.pretrained import load_source, pretrained_model
    from ..models import check_trained

    pre = load_source(f"hf:{folder}")
    model, vocab = pretrained_model(pre), pre.vocabulary()
    if model.config.architecture != "decoder":
        import json

        names = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
        what = f"Hugging Face {names[0]}" if names and isinstance(names[0], str) else "Hugging Face model"
        raise ConfigError(f"{folder} holds {a_or_an(what)}, an {model.config.architecture} that does not continue "
                          "text; generate needs a GPT-2 folder (GPT2LMHeadModel) or a decoder run")
    if vocab is None:
        raise ConfigError(f"{folder} holds no tokenizer (tokenizer.json, or vocab.json + merges.txt); save it beside "
                          "the model with tokenizer.save_pretrained(folder)")
    check_trained(model, "the text it generates", pre.source)
    return model, vocab


def read_prompt(path: str | Path) -> str:
    """The text of ``--prompt-file`` as it is (UTF-8; line ends read as newlines), as nanoGPT's
    ``sample.py --start=FILE:prompt.txt`` reads one: a prompt of several lines without the shell's quoting."""
    from ..data.compressed import read_text_file
    from ..data.corpus import not_utf8_text

    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"--prompt-file {path} {what}; give a UTF-8 text file, or the text as --prompt")
    try:
        return read_text_file(path)
    except UnicodeDecodeError as e:
        raise not_utf8_text(path, e) from None


def check_decoding(args: argparse.Namespace) -> None:
    """One decoding: sampling (the default, shaped by --temperature, --top-k, --top-p), --greedy, or beam search
    (--num-beams > 1, with --length-penalty). An option of another one would be ignored without a word (Hugging
    Face warns): refused instead."""
    sampling = [f"--{name.replace('_', '-')} {getattr(args, name)}" for name, default in
                (("temperature", 1.0), ("top_k", 0), ("top_p", 1.0)) if getattr(args, name) != default]
    if args.greedy and args.num_beams > 1:
        raise ConfigError(f"--greedy and --num-beams {args.num_beams} are two decodings; give one of them")
    if sampling and (args.greedy or args.num_beams > 1):
        decoding = "--greedy" if args.greedy else f"--num-beams {args.num_beams}"
        raise ConfigError(f"{' '.join(sampling)} {'shape' if len(sampling) > 1 else 'shapes'} sampling, which "
                          f"{decoding} does not do; leave {'them' if len(sampling) > 1 else 'it'} out, or leave out "
                          f"{decoding} to sample")
    if args.length_penalty != 1.0 and args.num_beams == 1:
        raise ConfigError(f"--length-penalty {args.length_penalty} scores beam search only; give --num-beams N (> 1) "
                          "or leave it out")


def run(args: argparse.Namespace) -> None:
    import sys

    import torch

    from ..folders import output_file, write_atomically
    from ..generate_many import generate_all, jsonl_rows, printed, read_prompts, unescape
    from ..train.distributed import pick_device

    if args.num_samples < 1:
        raise ConfigError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    stops = [unescape(s) for s in args.stop or []]
    if "" in stops:
        raise ConfigError("--stop '': an empty stop string would end every sequence before its first token; give the "
                          "text to stop at, e.g. --stop '\\n\\n' (two line breaks), or leave --stop out")
    if args.max_new_tokens is not None and args.max_new_tokens < 0:
        raise ConfigError(f"--max-new-tokens must be at least 0, got {args.max_new_tokens}")
    if args.temperature == 0:
        raise ConfigError("--temperature 0 is greedy decoding (always the most probable token); give --greedy instead")
    if not 0 < args.temperature < math.inf or not 0 < args.top_p <= 1 or args.num_beams < 1 or args.top_k < 0:
        raise ConfigError("need a finite --temperature > 0, 0 < --top-p <= 1, --top-k >= 0 (0: all tokens) and "
                          f"--num-beams >= 1; got {args.temperature}, {args.top_p}, {args.top_k} and {args.num_beams}")
    check_decoding(args)
    if not 0 < args.repetition_penalty < math.inf or args.no_repeat_ngram_size < 0:
        raise ConfigError(f"need a finite --repetition-penalty > 0 (1: none; 1.2 is usual) and --no-repeat-ngram-size "
                          f">= 0 (0: none); got {args.repetition_penalty} and {args.no_repeat_ngram_size}")
    if not math.isfinite(args.length_penalty):
        raise ConfigError(f"--length-penalty must be a finite number (e.g. 1.0), got {args.length_penalty}")
    if not -2 ** 63 <= args.seed < 2 ** 64:  # what torch.Generator.manual_seed takes
        raise ConfigError(f"--seed must be a whole number from -2**63 to 2**64 - 1, got {args.seed}; e.g. --seed 0")
    device = pick_device(args.device, "--device")
    if args.prompt_file is not None:
        args.prompt = read_prompt(args.prompt_file)
    prompts = read_prompts(args.prompts_file) if args.prompts_file is not None else [args.prompt]
    if args.out is not None:
        read = [f for f in (args.prompt_file, args.prompts_file) if f not in (None, "-")]
        output_file(args.out, "--out", args.overwrite, inputs=read, runs=[args.run_dir], suffixes=(".jsonl",))
    model, vocab = load_text_model(args.run_dir, args.checkpoint)
    model.to(device)
    generator = torch.Generator(device).manual_seed(args.seed)
    do_sample = not args.greedy and args.num_beams == 1
    options = dict(max_new_tokens=args.max_new_tokens, do_sample=do_sample, temperature=args.temperature,
                   top_k=args.top_k, top_p=args.top_p, num_beams=args.num_beams, length_penalty=args.length_penalty,
                   repetition_penalty=args.repetition_penalty, no_repeat_ngram_size=args.no_repeat_ngram_size,
                   generator=generator, stop=stops)
    # a language model continues the prompt (a baseline LM, which has no config, too); an encoder-decoder's
    # output is a target of its own, printed alone
    seq2seq = getattr(getattr(model, "config", None), "architecture", None) == "encoder-decoder"
    if args.out is None and len(prompts) == 1 and args.num_samples == 1 and args.num_beams == 1:
        # one sequence for the screen: printed while it is decoded (the same text as printed at the end), the
        # prompt with its first piece, so that a prompt refused before decoding leaves standard output empty
        shown = []

        def show(piece: str) -> None:
            print(("" if shown or seq2seq else prompts[0]) + piece, end="", flush=True)
            shown.append(piece)

        try:
            generate_all(model, vocab, prompts, 1, 1, stream=show, **options)
        except KeyboardInterrupt:  # Ctrl-C mid-text: the line ends before "xformer: interrupted" on stderr
            if shown:
                print(flush=True)
            raise
        print("" if shown or seq2seq else prompts[0])
        return
    outputs = generate_all(model, vocab, prompts, args.num_samples, args.batch_size, **options)
    if args.out is not None:
        write_atomically(args.out, jsonl_rows(prompts, outputs))
        print(f"wrote {sum(map(len, outputs))} outputs of {len(prompts)} prompts to {args.out}", file=sys.stderr)
        return
    print(printed(prompts, outputs, continues=not seq2seq))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="continue a text prompt with a trained language-model run",
        description="Load the model and tokenizer of RUN_DIR and print the prompt followed by its continuation "
                    "(one prompt and one sample: while it is decoded). Samples by default (temperature, top-k, "
                    "top-p); --greedy takes the most probable token; --num-beams > 1 runs beam search.",
        epilog='example: xformer generate runs/shakespeare --prompt "ROMEO:" --max-new-tokens 500 --top-k 40')
    p.add_argument("run_dir", metavar="RUN_DIR", help="a text run's folder, or a local Hugging Face GPT-2 folder")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompt", default="", help="text to continue (an encoder-decoder reads it as its source)")
    given.add_argument("--prompt-file", metavar="FILE", help="the prompt read from a UTF-8 text file, as it is "
                       "(several lines, a trailing newline kept)")
    given.add_argument("--prompts-file", metavar="FILE", help="several prompts: one per non-empty line, or the "
                       "'prompt' field of each row of a .jsonl (.csv, .tsv) file; - reads standard input; decoded "
                       "--batch-size at a time, each as it would be alone")
    p.add_argument("--stop", action="append", metavar="STRING",
                   help="end a sequence as soon as its new text holds STRING, which ends the output (repeatable; "
                        "\\n, \\t and \\\\ read as a line break, a tab and a backslash)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N",
                   help="sequences decoded together (prompts x --num-samples; default 16)")
    p.add_argument("--out", metavar="FILE.jsonl", help='write {"prompt", "sample", "text"} (the new text) per line, '
                   "in prompt order, instead of printing")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never an input or a file of "
                   "the run folder)")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint of the run (default best, the one metrics.json describes)")
    p.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                   help="new tokens to write (default: as many as fit in the model's positions after the prompt, "
                        "at most 200); more than fit slides the window (greedy and sampling; beam search refuses)")
    p.add_argument("--temperature", type=float, default=1.0, help="divides the logits before sampling (default 1)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most probable tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus: keep the most probable tokens up to mass p")
    p.add_argument("--num-beams", type=int, default=1, help="> 1: beam search (deterministic)")
    p.add_argument("--length-penalty", type=float, default=1.0, help="beam search: score = log p / length ** this")
    p.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R",
                   help="> 1 lowers the logits of tokens already written or in the prompt (CTRL's; default 1: none)")
    p.add_argument("--no-repeat-ngram-size", type=int, default=0, metavar="N",
                   help="never write an N-gram the text already holds (default 0: no rule)")
    p.add_argument("--greedy", action="store_true", help="always take the most probable token")
    p.add_argument("--num-samples", type=int, default=1, help="independent continuations, separated by dashes")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling generator")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.set_defaults(func=run)
