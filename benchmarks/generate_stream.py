"""What streaming costs `xformer generate`: one prompt continued with and without ``generate_text(stream=...)``,
alternated in one process (benchmarks/timing.py), with a self-vs-self row for the noise floor. The two sides must
write the same text (asserted). Without a run folder the model is the recipe's character GPT untrained
(tasks/char_gpt_shakespeare.yaml's sizes, the characters of the first 200,000 of tinyshakespeare; the speed of a step
does not depend on its weights), or with ``--tiny`` a 1-layer, 32-wide one, the case where the per-token work of
streaming costs most against a step.

    python benchmarks/generate_stream.py --tokens 600 --pairs 7 [--tiny] [--run RUN_DIR]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import alternate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def model_and_vocab(run: str | None, tiny: bool):
    from xformer import CoreConfig, ModelConfig, PartConfig, build_model
    from xformer.commands.generate import load_text_model
    from xformer.config import load_yaml
    from xformer.data.vocab import CharVocab

    if run is not None:
        return load_text_model(run)
    vocab = CharVocab.from_text((ROOT.parent / "shared" / "data" / "tinyshakespeare.txt").read_text()[:200_000])
    recipe = load_yaml(ROOT / "tasks" / "char_gpt_shakespeare.yaml")["model"]
    core = dict(d_model=32, n_layers=1, n_heads=2, d_ff=64) if tiny else \
        {k: v for k, v in recipe["core"].items() if k in ("d_model", "n_layers", "n_heads", "d_ff")}
    block = load_yaml(ROOT / "tasks" / "char_gpt_shakespeare.yaml")["data"]["args"].get("block_size", 256)
    torch.manual_seed(0)
    model = build_model(ModelConfig("decoder", CoreConfig(**core), PartConfig("text", {
        "vocab_size": vocab.vocab_size, "max_positions": block}), PartConfig("causal_lm")))
    return model.eval(), vocab


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a text run's folder (default: the recipe's GPT, untrained)")
    parser.add_argument("--tiny", action="store_true", help="a 1-layer, 32-wide GPT instead of the recipe's")
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args(argv)
    from xformer.generation import generate_text

    torch.set_num_threads(1)
    model, vocab = model_and_vocab(args.run, args.tiny)
    texts = {}

    def side(name, stream):
        def call():
            texts[name] = generate_text(model, vocab, "ROMEO:", args.tokens, do_sample=True, stream=stream,
                                        generator=torch.Generator().manual_seed(0))
        return call

    plain, streamed = alternate(side("plain", None), side("streamed", lambda piece: None), args.pairs)
    assert texts["plain"] == texts["streamed"], "streaming changed the text"
    again, plain_2 = alternate(side("plain", None), side("plain", None), args.pairs)
    ratio = statistics.median(s / p for p, s in zip(plain, streamed))
    floor = statistics.median(b / a for a, b in zip(again, plain_2))
    print(f"{args.tokens} tokens, {sum(p.numel() for p in model.parameters()):,} parameters, {args.pairs} pairs: "
          f"plain {statistics.median(plain):.3f} s, streamed {statistics.median(streamed):.3f} s (medians); "
          f"streamed / plain {ratio:.3f}, self-vs-self {floor:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
