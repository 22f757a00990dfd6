"""Text in, text out: continue prompts given as strings with a model and its vocabulary.

``generate_text`` encodes the prompts (left-padded into one batch; an encoder-decoder reads them
as its source), decodes with :func:`xformer.generation.decoding.generate` through the KV cache,
and returns only the new text, cut at [EOS]. By default it stops at the model's learned positions (at most
200 new tokens); asked for more, it slides the window as nanoGPT's ``sample.py`` does (``_WindowStepper``).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..batch import ATTENTION_MASK, INPUT_IDS, SRC_IDS, SRC_MASK
from ..core import Decoder, EncoderDecoder
from ..errors import ConfigError
from ..models import Model
from ..tokenizers.positions import LearnedPositions, SinusoidalPositions
from .decoding import Stepper, generate, greedy_or_sample, repeat_rules
from .stop import StopStrings, cut_at_stop, stop_strings
from .stream import TextStream

DEFAULT_NEW_TOKENS = 200  # generate_text's most new tokens when max_new_tokens is not given


def max_positions(model: Model) -> int | None:
    """How many positions the model's text embedding has learned (None: no limit, e.g. RoPE or none).

    Reads ``model.tokenizer.positions`` (``TextEmbedding``; ``.target`` of a ``Seq2SeqEmbedding``)
    or a BERT-style ``nn.Embedding`` table of positions.
    """
    if not hasattr(model, "tokenizer"):  # a recurrent or n-gram baseline reads any length
        return None
    embedding = getattr(model.tokenizer, "target", model.tokenizer)
    positions = getattr(embedding, "positions", None)
    if isinstance(positions, LearnedPositions):
        return positions.weight.shape[0]
    if isinstance(positions, SinusoidalPositions):
        return positions.table.shape[0]
    if isinstance(positions, nn.Embedding):
        return positions.num_embeddings
    return None


class _WindowStepper(Stepper):
    """nanoGPT's ``sample.py`` beyond the learned positions: while the sequence fits in ``window``
    positions, decode through the KV cache (exactly as ``generate``); after that, crop the context
    to its last ``window`` tokens and recompute them for every further token (the cache would need
    positions the model never learned)."""

    def __init__(self, model: Model, model_inputs: dict, window: int):
        super().__init__(model, model_inputs, use_cache=True)
        self.window = window

    def __call__(self, sequences: Tensor, attention_mask: Tensor | None) -> Tensor:
        if sequences.shape[1] <= self.window:
            return super().__call__(sequences, attention_mask)
        batch = {**self.model_inputs, INPUT_IDS: sequences[:, -self.window:]}
        if attention_mask is not None:  # left padding stays on the left of the crop
            batch[ATTENTION_MASK] = attention_mask[:, -self.window:]
        return self.model(batch)["logits"][:, -1].float()


class TokenizerVocab:
    """A Hugging Face tokenizer (``transformers`` ``PreTrainedTokenizer`` / ``...Fast``, or a ``tokenizers.Tokenizer``)
    seen through xformer's vocabulary interface: ``pad_id``, ``bos_id``, ``eos_id``, ``encode`` (no special tokens
    added), ``encode_batch``, ``decode`` (special tokens skipped). A ``tokenizers.Tokenizer`` names no roles: its
    [EOS] / <|endoftext|> / </s>, [BOS] / <s> and [PAD] / <pad> tokens are taken when it has them."""

    kind = "Hugging Face"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.is_tokenizers = hasattr(tokenizer, "token_to_id") and not hasattr(tokenizer, "convert_tokens_to_ids")
        find = (lambda *names: next((i for i in map(tokenizer.token_to_id, names) if i is not None), None))
        roles = {"pad": ("[PAD]", "<pad>", "<|endoftext|>"), "bos": ("[BOS]", "<s>", "<|endoftext|>"),
                 "eos": ("[EOS]", "</s>", "<|endoftext|>")}
        for role, names in roles.items():
            value = find(*names) if self.is_tokenizers else getattr(tokenizer, f"{role}_token_id", None)
            setattr(self, f"{role}_id", value)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size() if self.is_tokenizers else len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        if self.is_tokenizers:
            return self.tokenizer.encode(text, add_special_tokens=False).ids
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_batch(self, texts) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)


def as_vocab(vocab):
    """xformer's vocabularies as they are; a Hugging Face tokenizer wrapped in :class:`TokenizerVocab`."""
    if hasattr(vocab, "pad_id") and hasattr(vocab, "encode_batch"):
        return vocab
    if hasattr(vocab, "decode") and (hasattr(vocab, "convert_tokens_to_ids") or hasattr(vocab, "token_to_id")):
        return TokenizerVocab(vocab)
    raise ConfigError(f"generate_text needs an xformer vocabulary or a Hugging Face tokenizer, not {type(vocab).__name__}")


def _left_pad(rows: list[list[int]], pad: int, device) -> tuple[Tensor, Tensor | None]:
    """(B, N) ids with shorter rows padded on the left, and the mask (None when no row is padded)."""
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), n), dtype=torch.long, device=device)
    for i, r in enumerate(rows):
        if r:
            ids[i, n - len(r):] = torch.tensor(r, device=device)
            mask[i, n - len(r):] = 1
    return ids, (None if bool(mask.all()) else mask)


def _continuation(vocab, context: list[int], new: list[int]) -> str:
    """The text of ``new`` as it continues ``context``: decode(last context token + new) minus
    decode(last context token), so that a WordPiece "##ing" joins the word before it and a new word
    gets its leading space; for characters it is simply decode(new)."""
    tail = context[-1:]
    head, full = vocab.decode(tail), vocab.decode(tail + new)
    return full[len(head):] if full.startswith(head) else vocab.decode(new)


@torch.no_grad()
def generate_text(model: Model, vocab, prompt: str | list[str], max_new_tokens: int | None = None, *,
                  do_sample: bool = False, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  num_beams: int = 1, length_penalty: float = 1.0, early_stopping: bool | str = False,
                  repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
                  generator: torch.Generator | None = None, stop: str | list[str] | None = None,
                  stream: Callable[[str], None] | None = None) -> str | list[str]:
    """Continue ``prompt`` (one string, or a list decoded in left-padded batches); return only the new text,
    written so that ``prompt + result`` reads right. Stops a row at ``vocab.eos_id`` (not included), or right after
    the first of the ``stop`` strings its new text holds (included; :mod:`.stop`), the other rows going on.

    ``vocab``: an xformer vocabulary (RUN_DIR/tokenizer) or a Hugging Face tokenizer (``transformers`` or
    ``tokenizers``; see :class:`TokenizerVocab`).
    Decoder models continue the prompt's ids; an empty prompt starts from [EOS] (what precedes every
    paragraph of ``text_lm`` training, GPT-2's <|endoftext|> convention), else [BOS].
    Encoder-decoder models read the prompt as the source (``src_ids`` / ``src_mask``) and decode from [BOS].

    ``max_new_tokens`` None (the default): as many as fit in the model's learned positions (``max_positions``)
    after each prompt, at most ``DEFAULT_NEW_TOKENS`` (200); greedy, sampling and beam search alike (prompts
    whose counts differ are decoded in separate batches, so that each gets what it would alone). Asked for
    more explicitly, greedy and sampling slide the window: each further token is predicted from the last
    ``max_positions`` tokens only; beam search cannot slide and raises ConfigError. Sampling kwargs,
    ``repetition_penalty`` and ``no_repeat_ngram_size`` (over the prompt and all new tokens) as in ``generate``.

    ``stream``: called with each piece of the new text as it is decoded (:mod:`.stream`; e.g.
    ``functools.partial(print, end="", flush=True)``), the pieces joined being the returned text; one prompt,
    greedy or sampling (beam search changes its best sequence until the end).
    """
    core = getattr(model, "core", None)  # a baseline (xformer.baselines.text) names its architecture instead
    architecture = ("decoder" if isinstance(core, Decoder) else "encoder-decoder" if isinstance(core, EncoderDecoder)
                    else getattr(model, "architecture", None) if core is None else None)
    if architecture is None:
        name = type(core if core is not None else model).__name__
        head = getattr(getattr(getattr(model, "config", None), "head", None), "name", None)
        use = " (a text classifier: xformer predict RUN TEXTS gives its classes)" if head == "classification" else \
            " (a masked LM, pre-trained to fine-tune: it continues no text; xformer predict RUN 'a [MASK] text' " \
            "fills its masks)" if head == "masked_lm" else ""
        raise ConfigError(f"text generation needs a decoder or encoder-decoder model, not {name}{use}")
    vocab = as_vocab(vocab)
    stops = stop_strings(stop)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        return []
    if stream is not None and len(prompts) > 1:
        raise ConfigError(f"stream hands on the text of one sequence as it is decoded; give one prompt, not "
                          f"{len(prompts)}, or leave stream out")
    if stream is not None and num_beams > 1:
        raise ConfigError("stream hands on text as it is decoded, but beam search changes its best sequence until "
                          "the end; decode greedily or by sampling (num_beams=1), or leave stream out")
    device = next(model.parameters()).device
    window = max_positions(model)
    pad = vocab.pad_id if vocab.pad_id is not None else 0
    encoded = vocab.encode_batch(prompts)
    model_inputs = {}

    if architecture == "encoder-decoder":
        if vocab.bos_id is None:
            raise ConfigError("an encoder-decoder decodes from [BOS], which this vocabulary lacks")
        if not all(encoded):
            raise ConfigError("give a non-empty prompt: an encoder-decoder model reads the prompt as its source")
        longest = max(map(len, encoded))
        if window is not None and longest > window:
            raise ConfigError(f"the prompt has {longest} tokens, more than the model's {window} source positions; "
                              "shorten it")
        src = torch.full((len(encoded), longest), pad, dtype=torch.long, device=device)
        for i, r in enumerate(encoded):  # right-padded, as text_seq2seq's batches are
            src[i, :len(r)] = torch.tensor(r, device=device)
        lengths = torch.tensor([len(r) for r in encoded], device=device)
        model_inputs = {SRC_IDS: src, SRC_MASK: torch.arange(longest, device=device)[None] < lengths[:, None]}
        contexts = [[vocab.bos_id] for _ in encoded]
    else:
        start = vocab.eos_id if vocab.eos_id is not None else vocab.bos_id
        if not all(encoded) and start is None:
            raise ConfigError(f"the prompt is empty and the {vocab.kind} vocabulary has no [BOS] or [EOS] to start "
                              "from; give a prompt of at least one character")
        contexts = [r if r else [start] for r in encoded]
        if window is not None:  # a prompt longer than the window: keep its last tokens (nanoGPT's crop)
            contexts = [r[-window:] for r in contexts]

    counts = [max_new_tokens] * len(prompts)
    if max_new_tokens is None:  # what fits: beam search, which cannot slide, runs at the default too
        counts = [DEFAULT_NEW_TOKENS if window is None else min(DEFAULT_NEW_TOKENS, window - len(c)) for c in contexts]
        if min(counts) < 1:
            raise ConfigError(f"the prompt fills all {window} of the model's positions, so no new token fits; "
                              "shorten it, or give --max-new-tokens N to slide the window (greedy or sampling)")
    # WordPiece writes no whitespace back: a new word's leading space would double the one a prompt ends with
    spaced = architecture == "decoder" and not getattr(vocab, "keeps_whitespace", True)

    def text_of(i: int, new: list[int]) -> str:
        if vocab.eos_id is not None and vocab.eos_id in new:
            new = new[: new.index(vocab.eos_id)]
        text = _continuation(vocab, contexts[i], new)
        return text[1:] if spaced and prompts[i][-1:].isspace() and text.startswith(" ") else text

    options = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, num_beams=num_beams,
                   length_penalty=length_penalty, early_stopping=early_stopping,
                   repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)
    texts = [""] * len(prompts)
    for count in dict.fromkeys(counts):  # one batch per count, in the order the prompts first ask for it
        rows = [i for i, c in enumerate(counts) if c == count]
        ids, mask = _left_pad([contexts[i] for i in rows], pad, device)
        stop_when = None if not stops else \
            StopStrings(stops, lambda b, new, rows=rows: text_of(rows[b], new), ids.shape[1])
        if stream is not None:
            stop_when = TextStream(stream, lambda new: text_of(0, new), ids.shape[1], stops, stop_when)
        inputs = {key: value[rows] for key, value in model_inputs.items()}
        out = _decode(model, ids, mask, count, window, inputs, vocab.eos_id, generator, stop_when, options)
        for i, new in zip(rows, out[:, ids.shape[1]:].tolist()):
            texts[i] = cut_at_stop(text_of(i, new), stops)
        if stream is not None:
            stop_when.close(texts[0])
    return texts[0] if isinstance(prompt, str) else texts


def _decode(model: Model, ids: Tensor, mask: Tensor | None, max_new_tokens: int, window: int | None,
            model_inputs: dict, eos: int | None, generator, stop_when, options: dict) -> Tensor:
    """``generate`` on one left-padded batch; past the model's ``window`` positions, greedy or sampling through
    the sliding window (``_WindowStepper``), and beam search refused."""
    n = ids.shape[1]
    if window is None or n + max_new_tokens <= window:
        return generate(model, ids, mask, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=eos,
                        generator=generator, model_inputs=model_inputs, stop_when=stop_when, **options)
    if options["num_beams"] > 1:
        raise ConfigError(f"beam search cannot go past the model's {window} positions ({n} prompt + {max_new_tokens} "
                          f"new tokens, {window - n} fit); lower --max-new-tokens or leave it out (as many as fit), "
                          "or sample / decode greedily instead")
    temperature, top_p = options["temperature"], options["top_p"]
    if max_new_tokens < 0 or temperature <= 0 or not 0 < top_p <= 1:
        raise ValueError("need max_new_tokens >= 0, temperature > 0 and 0 < top_p <= 1")
    was_training = model.training
    model.eval()
    try:
        return greedy_or_sample(_WindowStepper(model, model_inputs, window), ids, mask, max_new_tokens,
                                options["do_sample"], temperature, options["top_k"], top_p, eos, eos, generator,
                                repeat_rules(options["repetition_penalty"], options["no_repeat_ngram_size"]),
                                stop_when)
    finally:
        model.train(was_training)


__all__ = ["generate_text", "max_positions", "TokenizerVocab", "as_vocab", "DEFAULT_NEW_TOKENS"]
