"""Token-level decoding from any decoder or encoder-decoder Model, through the KV cache.

The prompt is run once; every later step feeds only the newest token and reads
the keys/values of the earlier ones from the cache (``use_cache=False``
recomputes everything, the reference the cache is tested against). With
left-padded prompts the attention mask grows by one real position per step,
so each row gets the positions and the keys it would get alone.

With logits z_t of the next token (the conventions of Hugging Face
``generate``, so results compare token for token), first, for every decoding
(beam search: on log p instead of z):

    repetition penalty   z[v] <- z[v] / r if z[v] > 0 else z[v] * r, for every token v already in the
                         row, prompt included (CTRL, Keskar et al. 2019; r > 1 discourages repeats)
    no repeated n-grams  z[v] <- -inf where v would complete an n-gram the row already holds

then:

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

A row that produced ``eos_token_id``, or that ``stop_when`` (e.g. stop strings, :mod:`.stop`) says is done, is
finished: it is padded with ``pad_token_id`` (default: eos) and the loop stops when every row is finished.

Text in, text out (a vocabulary, prompts as strings) is :mod:`xformer.generation.text`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..batch import ATTENTION_MASK, INPUT_IDS
from ..models import Model

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


def penalize_repeats(logits: Tensor, ids: Tensor, penalty: float = 1.0) -> Tensor:
    """The repetition penalty: each row's logits of the tokens in ``ids`` (B, L) divided by ``penalty`` where
    positive, multiplied where negative (so r > 1 always lowers them); 1.0 leaves them."""
    if penalty == 1.0:
        return logits
    seen = logits.gather(1, ids)
    return logits.scatter(1, ids, torch.where(seen < 0, seen * penalty, seen / penalty))


def ban_repeated_ngrams(logits: Tensor, ids: Tensor, n: int = 0) -> Tensor:
    """-inf for each token that would end an n-gram already in its row of ``ids`` (B, L): the n-grams whose
    first n - 1 tokens are the row's last n - 1; n = 0 bans nothing."""
    if n <= 0 or ids.shape[1] < n:
        return logits
    windows = ids.unfold(1, n, 1)  # (B, L - n + 1, n): every n-gram of the row
    match = (windows[..., :-1] == ids[:, None, ids.shape[1] - n + 1:]).all(-1).to(logits.dtype)
    banned = torch.zeros_like(logits).scatter_add_(1, windows[..., -1], match) > 0
    return logits.masked_fill(banned, float("-inf"))


def repeat_rules(repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0):
    """The step ``(scores (B, V), ids (B, L)) -> scores`` every decoding takes first: the repetition penalty, then
    the n-gram ban (Hugging Face's order); None when neither is asked for."""
    if not repetition_penalty > 0 or repetition_penalty == float("inf") or no_repeat_ngram_size < 0:
        raise ValueError(f"need a finite repetition_penalty > 0 (1.0: none) and no_repeat_ngram_size >= 0 (0: none), "
                         f"got {repetition_penalty} and {no_repeat_ngram_size}")
    if repetition_penalty == 1.0 and no_repeat_ngram_size == 0:
        return None
    return lambda scores, ids: ban_repeated_ngrams(penalize_repeats(scores, ids, repetition_penalty), ids,
                                                   no_repeat_ngram_size)


def warp_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Temperature, then top-k, then top-p (Hugging Face's order)."""
    if temperature != 1.0:
        scaled = logits / temperature
        if not bool(scaled.amax(-1).isfinite().all()):
            # T below ~1e-37 overflows (inf, or 0/0 where T rounds to 0): softmax would give NaN; its limit is
            # the most probable token(s) alone
            scaled = torch.where(logits == logits.amax(-1, keepdim=True), 0.0, -math.inf)
        logits = scaled
    return top_p_filter(top_k_filter(logits, top_k), top_p)


# ---------------------------------------------------------------- the model, step by step


class Stepper:
    """Calls the model on the positions not seen yet and returns the next-token logits (float32)."""

    def __init__(self, model: Model, model_inputs: dict, use_cache: bool):
        self.model, self.model_inputs = model, model_inputs
        # a model without a cache (e.g. an LSTM baseline) is run on the whole sequence at every step
        self.cache = model.new_cache() if use_cache and hasattr(model, "new_cache") else None

    def __call__(self, sequences: Tensor, attention_mask: Tensor | None) -> Tensor:
        new = sequences[:, self.cache.length:] if self.cache is not None else sequences
        batch = {**self.model_inputs, INPUT_IDS: new}
        if attention_mask is not None:
            batch[ATTENTION_MASK] = attention_mask
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
             repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
             eos_token_id: int | None = None, pad_token_id: int | None = None,
             generator: torch.Generator | None = None, model_inputs: dict | None = None,
             use_cache: bool = True, stop_when=None) -> Tensor:
    """Continue ``input_ids`` (B, N); return (B, N + T), the prompt then T <= max_new_tokens new tokens.

    attention_mask: (B, N), 1 = real token; prompts of different lengths are LEFT-padded.
    model_inputs: other batch keys the model reads at every step, e.g. ``src_ids`` /
        ``src_mask`` of an encoder-decoder (whose ``input_ids`` is then the target prompt, e.g. [BOS]).
    early_stopping: beam search only; True stops a row once num_beams hypotheses ended,
        False / "never" as in Hugging Face (a heuristic / an exact bound on further improvement).
    top_k=0 and top_p=1.0 disable those filters (Hugging Face's default top_k is 50).
    repetition_penalty (1.0: none), no_repeat_ngram_size (0: none): every decoding (module docstring).
    stop_when: (B, m, L) sequences -> (B, m) bool, those that end after their last token (m = 1, or beam search's
        2 * num_beams candidates per row, which then end as at eos), e.g. :class:`.stop.StopStrings`.
    The model runs in eval mode (dropout off); its previous mode is restored.
    """
    if max_new_tokens < 0 or num_beams < 1 or not 0 < temperature < float("inf") or not 0 < top_p <= 1:
        raise ValueError("need max_new_tokens >= 0, num_beams >= 1, a finite temperature > 0 and 0 < top_p <= 1, got "
                         f"{max_new_tokens}, {num_beams}, {temperature} and {top_p}")
    if num_beams > 1 and do_sample:
        raise ValueError("beam search with sampling is not supported; use num_beams=1 or do_sample=False")
    rules = repeat_rules(repetition_penalty, no_repeat_ngram_size)
    if max_new_tokens == 0:
        return input_ids
    pad = pad_token_id if pad_token_id is not None else eos_token_id
    was_training = model.training
    model.eval()
    try:
        if num_beams == 1:
            step = Stepper(model, dict(model_inputs or {}), use_cache)
            return greedy_or_sample(step, input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k,
                                    top_p, eos_token_id, pad, generator, rules, stop_when)
        expand = {k: v.repeat_interleave(num_beams, 0) if isinstance(v, Tensor) else v
                  for k, v in (model_inputs or {}).items()}
        step = Stepper(model, expand, use_cache)
        return _beam_search(step, input_ids, attention_mask, max_new_tokens, num_beams, length_penalty,
                            early_stopping, eos_token_id, pad, rules, stop_when)
    finally:
        model.train(was_training)


def greedy(model: Model, batch: dict, max_new_tokens: int, eos_id: int | None = None) -> Tensor:
    """The new tokens (B, T) of greedy decoding of ``batch`` (input_ids, optional attention_mask and
    any other keys, e.g. an encoder-decoder's source). Finished rows are padded with ``eos_id``."""
    others = {k: v for k, v in batch.items() if k not in (INPUT_IDS, ATTENTION_MASK)}
    out = generate(model, batch[INPUT_IDS], batch.get(ATTENTION_MASK), max_new_tokens=max_new_tokens,
                   eos_token_id=eos_id, pad_token_id=eos_id, model_inputs=others)
    return out[:, batch[INPUT_IDS].shape[1]:]


# ---------------------------------------------------------------- greedy and sampling


def greedy_or_sample(step: Stepper, ids: Tensor, mask: Tensor | None, max_new_tokens: int, do_sample: bool,
                     temperature: float, top_k: int, top_p: float, eos: int | None, pad: int | None,
                     generator: torch.Generator | None, rules=None, stop_when=None) -> Tensor:
    """Append up to ``max_new_tokens`` tokens to ``ids``, one ``step`` at a time: the argmax, or a draw
    from the warped distribution (``do_sample``), of the logits after ``rules`` (``repeat_rules``); rows that
    produced ``eos`` or that ``stop_when`` ended are padded with ``pad`` (None and no eos: 0)."""
    unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
    fill = pad if pad is not None else (eos if eos is not None else 0)
    for _ in range(max_new_tokens):
        logits = step(ids, mask)
        if rules is not None:
            logits = rules(logits, ids)
        if do_sample:
            probs = warp_logits(logits, temperature, top_k, top_p).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(-1)
        if eos is not None or stop_when is not None:
            token = torch.where(unfinished, token, torch.full_like(token, fill))
        if eos is not None:
            unfinished &= token != eos
        ids, mask = torch.cat([ids, token[:, None]], dim=1), _grow(mask)
        if stop_when is not None:
            unfinished &= ~stop_when(ids[:, None])[:, 0]
        if not bool(unfinished.any()):
            break
    return ids


# ---------------------------------------------------------------- beam search


def _beam_search(step: Stepper, ids: Tensor, mask: Tensor | None, max_new_tokens: int, k: int,
                 length_penalty: float, early_stopping: bool | str, eos: int | None, pad: int | None,
                 rules=None, stop_when=None) -> Tensor:
    """Beam search as Hugging Face's (transformers >= 4.50), written for one batch row of k beams at a time
    in tensor form (B, k, ...). Each step:

    1. score every (beam, token) continuation: running score + log p(token | beam) (after ``rules``);
    2. take the best 2k of them (2k so that k stay alive even if k end here);
    3. the best k that did not end become the running beams (the cache is reordered to them);
    4. those among the top k that ended (eos, ``stop_when``, or the token limit) are scored with the
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
        if rules is not None:
            logprobs = rules(logprobs, running[:, :, :cur].flatten(0, 1))
        vocab = logprobs.shape[-1]
        scores = (logprobs.view(b, k, vocab) + running_scores[..., None]).view(b, k * vocab)
        top_scores, top_index = scores.topk(2 * k, dim=-1)  # (b, 2k)
        source_beam, token = top_index // vocab, top_index % vocab
        candidates = running.gather(1, source_beam[..., None].expand(-1, -1, total)).clone()
        candidates[:, :, cur] = token
        ended = (token == eos) if eos is not None else torch.zeros_like(token, dtype=torch.bool)
        ended |= t == max_new_tokens - 1
        if stop_when is not None:
            ended |= stop_when(candidates[:, :, :cur + 1])

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


__all__ = ["generate", "greedy", "top_k_filter", "top_p_filter", "warp_logits", "penalize_repeats",
           "ban_repeated_ngrams", "repeat_rules", "Stepper", "greedy_or_sample"]
