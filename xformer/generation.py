"""Text generation from any decoder or encoder-decoder Model, through the KV cache.

The prompt is run once; every later step feeds only the newest token and reads
the keys/values of the earlier ones from the cache (``use_cache=False``
recomputes everything, the reference the cache is tested against). With
left-padded prompts the attention mask grows by one real position per step,
so each row gets the positions and the keys it would get alone.

With logits z_t of the next token (the conventions of Hugging Face
``generate``, so results compare token for token):

    greedy       y_t = argmax_v z_t[v]
    sampling     z <- z / T                                   temperature
                 keep z[v] only if z[v] >= (k-th largest z)   top-k (ties kept)
                 keep the smallest set of most probable tokens whose probability
                 sum reaches p (at least one)                 top-p, "nucleus" (Holtzman et al. 2020)
                 y_t ~ softmax(z)
    beam search  keep the num_beams partial sequences with the largest sum_t log p(y_t);
                 a hypothesis that ends (eos, or max_new_tokens reached) is scored
                     score = sum_t log p(y_t) / L ** length_penalty,   L = generated tokens, eos included,
                 and the best num_beams of those are kept; the best one is returned.

A row that produced ``eos_token_id`` is finished: it is padded with
``pad_token_id`` (default: eos) and the loop stops when every row is finished.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .models import Model

NEG = -1.0e9  # "impossible" score of beam search, as in Hugging Face (finite, so arithmetic stays finite)


# ---------------------------------------------------------------- logits filters


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Set every logit below the k-th largest of its row to -inf (k <= 0: no filtering)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most probable tokens whose total probability reaches ``p``.

    Sorted ascending, a token is dropped when the probability of it and of all
    less probable tokens is <= 1 - p (equivalently: the more probable tokens
    already reach p). The most probable token is always kept.
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1)
    drop_sorted = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p
    drop_sorted[..., -1] = False
    return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))


def warp_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Temperature, then top-k, then top-p (Hugging Face's order)."""
    if temperature != 1.0:
        logits = logits / temperature
    return top_p_filter(top_k_filter(logits, top_k), top_p)


# ---------------------------------------------------------------- the model, step by step


class _Stepper:
    """Calls the model on the positions not seen yet and returns the next-token logits (float32)."""

    def __init__(self, model: Model, model_inputs: dict, use_cache: bool):
        self.model, self.model_inputs = model, model_inputs
        # a model without a cache (e.g. an LSTM baseline) is run on the whole sequence at every step
        self.cache = model.new_cache() if use_cache and hasattr(model, "new_cache") else None

    def __call__(self, sequences: Tensor, attention_mask: Tensor | None) -> Tensor:
        new = sequences[:, self.cache.length:] if self.cache is not None else sequences
        batch = {**self.model_inputs, "input_ids": new}
        if attention_mask is not None:
            batch["attention_mask"] = attention_mask
        out = self.model(batch, cache=self.cache) if self.cache is not None else self.model(batch)
        return out["logits"][:, -1].float()

    def reorder_(self, index: Tensor) -> None:
        if self.cache is not None:
            self.cache.reorder_(index)


def _grow(mask: Tensor | None) -> Tensor | None:
    return None if mask is None else torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)


# ---------------------------------------------------------------- public API


@torch.no_grad()
def generate(model: Model, input_ids: Tensor, attention_mask: Tensor | None = None, *, max_new_tokens: int,
             do_sample: bool = False, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             num_beams: int = 1, length_penalty: float = 1.0, early_stopping: bool | str = False,
             eos_token_id: int | None = None, pad_token_id: int | None = None,
             generator: torch.Generator | None = None, model_inputs: dict | None = None,
             use_cache: bool = True) -> Tensor:
    """Continue ``input_ids`` (B, N); return (B, N + T), the prompt then T <= max_new_tokens new tokens.

    attention_mask: (B, N), 1 = real token; prompts of different lengths are LEFT-padded.
    model_inputs: other batch keys the model reads at every step, e.g. ``src_ids`` /
        ``src_mask`` of an encoder-decoder (whose ``input_ids`` is then the target prompt, e.g. [BOS]).
    early_stopping: beam search only; True stops a row once num_beams hypotheses ended,
        False / "never" as in Hugging Face (a heuristic / an exact bound on further improvement).
    top_k=0 and top_p=1.0 disable those filters (Hugging Face's default top_k is 50).
    The model runs in eval mode (dropout off); its previous mode is restored.
    """
    if max_new_tokens < 0 or num_beams < 1 or temperature <= 0 or not 0 < top_p <= 1:
        raise ValueError("need max_new_tokens >= 0, num_beams >= 1, temperature > 0 and 0 < top_p <= 1")
    if num_beams > 1 and do_sample:
        raise ValueError("beam search with sampling is not supported; use num_beams=1 or do_sample=False")
    if max_new_tokens == 0:
        return input_ids
    pad = pad_token_id if pad_token_id is not None else eos_token_id
    was_training = model.training
    model.eval()
    try:
        if num_beams == 1:
            step = _Stepper(model, dict(model_inputs or {}), use_cache)
            return _sample(step, input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p,
                           eos_token_id, pad, generator)
        expand = {k: v.repeat_interleave(num_beams, 0) if isinstance(v, Tensor) else v
                  for k, v in (model_inputs or {}).items()}
        step = _Stepper(model, expand, use_cache)
        return _beam_search(step, input_ids, attention_mask, max_new_tokens, num_beams, length_penalty,
                            early_stopping, eos_token_id, pad)
    finally:
        model.train(was_training)


def greedy(model: Model, batch: dict, max_new_tokens: int, eos_id: int | None = None) -> Tensor:
    """The new tokens (B, T) of greedy decoding of ``batch`` (input_ids, optional attention_mask and
    any other keys, e.g. an encoder-decoder's source). Finished rows are padded with ``eos_id``."""
    others = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    out = generate(model, batch["input_ids"], batch.get("attention_mask"), max_new_tokens=max_new_tokens,
                   eos_token_id=eos_id, pad_token_id=eos_id, model_inputs=others)
    return out[:, batch["input_ids"].shape[1]:]


# ---------------------------------------------------------------- greedy and sampling


def _sample(step: _Stepper, ids: Tensor, mask: Tensor | None, max_new_tokens: int, do_sample: bool,
            temperature: float, top_k: int, top_p: float, eos: int | None, pad: int | None,
            generator: torch.Generator | None) -> Tensor:
    unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
    for _ in range(max_new_tokens):
        logits = step(ids, mask)
        if do_sample:
            probs = warp_logits(logits, temperature, top_k, top_p).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(-1)
        if eos is not None:
            token = torch.where(unfinished, token, torch.full_like(token, pad))
            unfinished &= token != eos
        ids, mask = torch.cat([ids, token[:, None]], dim=1), _grow(mask)
        if not bool(unfinished.any()):
            break
    return ids


# ---------------------------------------------------------------- beam search


def _beam_search(step: _Stepper, ids: Tensor, mask: Tensor | None, max_new_tokens: int, k: int,
                 length_penalty: float, early_stopping: bool | str, eos: int | None, pad: int | None) -> Tensor:
    """Beam search as Hugging Face's (transformers >= 4.50), written for one batch row of k beams at a time
    in tensor form (B, k, ...). Each step:

    1. score every (beam, token) continuation: running score + log p(token | beam);
    2. take the best 2k of them (2k so that k stay alive even if k end here);
    3. the best k that did not end become the running beams (the cache is reordered to them);
    4. those among the top k that ended (eos, or the token limit) are scored with the
       length penalty and merged into the k best finished hypotheses;
    5. a row stops when no running beam can still beat its worst finished hypothesis.
    """
    b, n = ids.shape
    total = n + max_new_tokens
    fill = pad if pad is not None else (eos if eos is not None else 0)
    running = ids.new_full((b, k, total), fill)
    running[:, :, :n] = ids[:, None]
    running_scores = ids.new_zeros((b, k), dtype=torch.float)
    running_scores[:, 1:] = NEG  # all beams start equal: only beam 0 may expand at the first step
    finished, finished_scores = running.clone(), torch.full_like(running_scores, NEG)
    finished_len = torch.full((b, k), n, dtype=torch.long, device=ids.device)
    is_finished = torch.zeros((b, k), dtype=torch.bool, device=ids.device)
    improvable = torch.ones(b, dtype=torch.bool, device=ids.device)
    mask = mask.repeat_interleave(k, 0) if mask is not None else None
    rank_in_top_k = torch.arange(2 * k, device=ids.device) < k

    for t in range(max_new_tokens):
        cur = n + t
        logprobs = step(running[:, :, :cur].flatten(0, 1), mask).log_softmax(-1)  # (b*k, V)
        vocab = logprobs.shape[-1]
        scores = (logprobs.view(b, k, vocab) + running_scores[..., None]).view(b, k * vocab)
        top_scores, top_index = scores.topk(2 * k, dim=-1)  # (b, 2k)
        source_beam, token = top_index // vocab, top_index % vocab
        candidates = running.gather(1, source_beam[..., None].expand(-1, -1, total)).clone()
        candidates[:, :, cur] = token
        ended = (token == eos) if eos is not None else torch.zeros_like(token, dtype=torch.bool)
        ended |= t == max_new_tokens - 1

        # 3. the next running beams
        alive_scores = top_scores + NEG * ended.float()
        keep = alive_scores.topk(k, dim=-1).indices
        running = candidates.gather(1, keep[..., None].expand(-1, -1, total))
        running_scores = alive_scores.gather(1, keep)
        step.reorder_((torch.arange(b, device=ids.device)[:, None] * k + source_beam.gather(1, keep)).flatten())

        # 4. merge the hypotheses that ended into the finished ones
        new_finished = ended & rank_in_top_k
        new_scores = top_scores / (t + 1) ** length_penalty
        closed = ~improvable | (is_finished.all(-1) & (early_stopping is True))
        new_scores = new_scores + NEG * closed[:, None].float() + NEG * (~new_finished).float()
        merged_scores = torch.cat([finished_scores, new_scores], dim=1)
        best = merged_scores.topk(k, dim=-1).indices
        finished_scores = merged_scores.gather(1, best)
        finished = torch.cat([finished, candidates], dim=1).gather(1, best[..., None].expand(-1, -1, total))
        finished_len = torch.cat([finished_len, torch.full_like(token, cur + 1)], dim=1).gather(1, best)
        is_finished = torch.cat([is_finished, new_finished], dim=1).gather(1, best)

        # 5. can a running beam still beat the worst finished hypothesis?
        mask = _grow(mask)
        best_len = max_new_tokens if early_stopping == "never" and length_penalty > 0 else t + 1
        best_possible = running_scores[:, 0] / best_len ** length_penalty
        worst = torch.where(is_finished.all(-1), finished_scores.min(-1).values, torch.full_like(best_possible, NEG))
        improvable &= best_possible > worst
        if not bool(improvable.any()) or (early_stopping is True and bool(is_finished.all())) or bool(ended.all()):
            break

    return finished[:, 0, : int(finished_len[:, 0].max())]


# ---------------------------------------------------------------- text in, text out


def max_positions(model: Model) -> int | None:
    """How many positions the model's text embedding has learned (None: no limit, e.g. RoPE or none).

    Reads ``model.tokenizer.positions`` (``TextEmbedding``; ``.target`` of a ``Seq2SeqEmbedding``)
    or a BERT-style ``nn.Embedding`` table of positions.
    """
    from torch import nn

    from .core import LearnedPositions, SinusoidalPositions

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


class _WindowStepper(_Stepper):
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
        batch = {**self.model_inputs, "input_ids": sequences[:, -self.window:]}
        if attention_mask is not None:  # left padding stays on the left of the crop
            batch["attention_mask"] = attention_mask[:, -self.window:]
        return self.model(batch)["logits"][:, -1].float()


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
def generate_text(model: Model, vocab, prompt: str | list[str], max_new_tokens: int = 200, *,
                  do_sample: bool = False, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  num_beams: int = 1, length_penalty: float = 1.0, early_stopping: bool | str = False,
                  generator: torch.Generator | None = None) -> str | list[str]:
    """Continue ``prompt`` (one string, or a list decoded as one left-padded batch); return only the new text,
    written so that ``prompt + result`` reads right. Stops a row at ``vocab.eos_id`` (not included).

    Decoder models continue the prompt's ids; an empty prompt starts from [EOS] (what precedes every
    paragraph of ``text_lm`` training, GPT-2's <|endoftext|> convention), else [BOS].
    Encoder-decoder models read the prompt as the source (``src_ids`` / ``src_mask``) and decode from [BOS].

    A prompt plus ``max_new_tokens`` longer than the model's learned positions (``max_positions``) slides
    the window: each further token is predicted from the last ``max_positions`` tokens only (greedy and
    sampling; beam search cannot slide and raises ConfigError). Sampling kwargs as in ``generate``.
    """
    from .config import ConfigError
    from .core import Decoder, EncoderDecoder

    core = getattr(model, "core", None)  # a baseline (xformer.baselines.text) names its architecture instead
    architecture = ("decoder" if isinstance(core, Decoder) else "encoder-decoder" if isinstance(core, EncoderDecoder)
                    else getattr(model, "architecture", None) if core is None else None)
    if architecture is None:
        name = type(core if core is not None else model).__name__
        raise ConfigError(f"text generation needs a decoder or encoder-decoder model, not {name}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        return []
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
        model_inputs = {"src_ids": src, "src_mask": torch.arange(longest, device=device)[None] < lengths[:, None]}
        contexts = [[vocab.bos_id] for _ in encoded]
    else:
        start = vocab.eos_id if vocab.eos_id is not None else vocab.bos_id
        if not all(encoded) and start is None:
            raise ConfigError(f"the prompt is empty and the {vocab.kind} vocabulary has no [BOS] or [EOS] to start "
                              "from; give a prompt of at least one character")
        contexts = [r if r else [start] for r in encoded]
        if window is not None:  # a prompt longer than the window: keep its last tokens (nanoGPT's crop)
            contexts = [r[-window:] for r in contexts]
    ids, mask = _left_pad(contexts, pad, device)

    n = ids.shape[1]
    if window is None or n + max_new_tokens <= window:
        out = generate(model, ids, mask, max_new_tokens=max_new_tokens, do_sample=do_sample,
                       temperature=temperature, top_k=top_k, top_p=top_p, num_beams=num_beams,
                       length_penalty=length_penalty, early_stopping=early_stopping, eos_token_id=vocab.eos_id,
                       pad_token_id=vocab.eos_id, generator=generator, model_inputs=model_inputs)
    elif num_beams > 1:
        raise ConfigError(f"beam search cannot go past the model's {window} positions ({n} prompt + {max_new_tokens} "
                          "new tokens); lower --max-new-tokens or sample / decode greedily instead")
    else:
        if max_new_tokens < 0 or temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError("need max_new_tokens >= 0, temperature > 0 and 0 < top_p <= 1")
        was_training = model.training
        model.eval()
        try:
            out = _sample(_WindowStepper(model, model_inputs, window), ids, mask, max_new_tokens, do_sample,
                          temperature, top_k, top_p, vocab.eos_id, vocab.eos_id, generator)
        finally:
            model.train(was_training)

    texts = []
    for context, row in zip(contexts, out[:, n:].tolist()):
        if vocab.eos_id is not None and vocab.eos_id in row:
            row = row[: row.index(vocab.eos_id)]
        texts.append(_continuation(vocab, context, row))
    return texts[0] if isinstance(prompt, str) else texts


__all__ = ["generate", "greedy", "generate_text", "max_positions", "top_k_filter", "top_p_filter", "warp_logits"]
