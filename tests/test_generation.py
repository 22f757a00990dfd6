"""Decoding: greedy / sampling / beam search against Hugging Face on a converted GPT-2,
the KV cache against recomputation, left padding against one prompt at a time, and the filters."""
import math

import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.generation import generate, greedy, top_k_filter, top_p_filter

transformers = pytest.importorskip("transformers")
from xformer.interop.hf_gpt2 import load_gpt2  # noqa: E402

EOS, PAD = 60, 98


@pytest.fixture(scope="module")
def gpt2_pair():
    """A random GPT-2 with large weights (std 0.2) so that its continuations vary, and its xformer copy.
    The weights are drawn on the CPU whatever the default device (benchmarks/gpu_check.sh runs these tests with
    CUDA as the default device), so the continuations the tests rely on (varied, reaching EOS) are the same."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=64,
                                     bos_token_id=99, eos_token_id=99, initializer_range=0.2)
    with torch.device("cpu"):
        hf = transformers.GPT2LMHeadModel(config).eval()
    hf.to(torch.empty(0).device)
    return hf, load_gpt2(hf)


def _left_padded(prompts, pad=PAD):
    n = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), n), pad)
    mask = torch.zeros(len(prompts), n, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, n - len(p):] = torch.tensor(p)
        mask[i, n - len(p):] = 1
    return ids, mask


PROMPTS = [[4, 29, 37, 7, 7], [49, 11], [13, 45, 17, 5]]


def test_greedy_equals_hf_token_for_token(gpt2_pair):
    hf, ours = gpt2_pair
    ids = torch.tensor([PROMPTS[0]])
    ref = hf.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=PAD)
    assert torch.equal(generate(ours, ids, max_new_tokens=12), ref)
    assert len(set(ref[0, 5:].tolist())) > 3  # a real test: the continuation is not one repeated token


def test_greedy_left_padded_batch_equals_hf_and_single_prompts(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded(PROMPTS)
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=PAD)
    out = generate(ours, ids, mask, max_new_tokens=8)
    assert torch.equal(out, ref)
    for i, p in enumerate(PROMPTS):
        alone = generate(ours, torch.tensor([p]), max_new_tokens=8)
        assert torch.equal(out[i, -8:], alone[0, -8:])


def test_greedy_stops_at_eos_and_pads(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded(PROMPTS)
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=False, eos_token_id=EOS,
                      pad_token_id=PAD)
    out = generate(ours, ids, mask, max_new_tokens=10, eos_token_id=EOS, pad_token_id=PAD)
    assert torch.equal(out, ref)
    assert (out == EOS).any()  # the chosen eos does occur, so stopping is exercised


@pytest.mark.parametrize("eos, length_penalty, early_stopping", [
    (None, 1.0, False), (EOS, 1.0, False), (EOS, 0.5, True), (2, 2.0, "never"),
])
def test_beam_search_equals_hf(gpt2_pair, eos, length_penalty, early_stopping):
    hf, ours = gpt2_pair
    ids = torch.tensor([PROMPTS[0], [49, 11, 39, 13, 45]])
    kw = dict(max_new_tokens=10, num_beams=3, length_penalty=length_penalty, early_stopping=early_stopping,
              eos_token_id=eos, pad_token_id=PAD)
    ref = hf.generate(ids, do_sample=False, **kw)
    out = generate(ours, ids, **kw)
    assert torch.equal(out, ref)


def test_beam_search_finds_the_best_sequence_of_a_tiny_vocab():
    """With as many beams as the vocabulary, beam search is exhaustive over 2-token continuations."""
    torch.manual_seed(1)
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2),
                                    PartConfig("text", {"vocab_size": 3, "max_positions": 8}),
                                    PartConfig("causal_lm")))
    model.tokenizer.embed.weight.data.mul_(50)  # peaked, position-dependent distributions
    prompt = torch.tensor([[0, 1]])
    out = generate(model, prompt, max_new_tokens=2, num_beams=3, length_penalty=0.0)
    best, best_score = None, -math.inf
    for a in range(3):
        for b in range(3):
            seq = torch.tensor([[0, 1, a, b]])
            logp = model({"input_ids": seq})["logits"].log_softmax(-1)
            score = (logp[0, 1, a] + logp[0, 2, b]).item()
            if score > best_score:
                best, best_score = seq, score
    assert torch.equal(out, best)


def test_sampling_equals_hf_with_the_same_seed(gpt2_pair):
    hf, ours = gpt2_pair
    ids, mask = _left_padded(PROMPTS)
    kw = dict(max_new_tokens=8, do_sample=True, temperature=0.7, top_k=20, top_p=0.9, pad_token_id=PAD)
    torch.manual_seed(123)
    ref = hf.generate(ids, attention_mask=mask, **kw)
    torch.manual_seed(123)
    assert torch.equal(generate(ours, ids, mask, **kw), ref)
    g1, g2 = torch.Generator(ids.device).manual_seed(5), torch.Generator(ids.device).manual_seed(5)
    assert torch.equal(generate(ours, ids, mask, generator=g1, **kw), generate(ours, ids, mask, generator=g2, **kw))


@pytest.mark.parametrize("num_beams", [1, 3])
def test_kv_cache_equals_recomputation(gpt2_pair, num_beams):
    _, ours = gpt2_pair
    ids, mask = _left_padded(PROMPTS)
    kw = dict(max_new_tokens=6, num_beams=num_beams, eos_token_id=EOS, pad_token_id=PAD)
    assert torch.equal(generate(ours, ids, mask, **kw), generate(ours, ids, mask, use_cache=False, **kw))


def test_encoder_decoder_generation_cache_and_beams():
    torch.manual_seed(0)
    model = build_model(ModelConfig("encoder-decoder", CoreConfig(d_model=32, n_layers=1, n_heads=2),
                                    PartConfig("seq2seq_text", {"vocab_size": 20, "max_positions": 16}),
                                    PartConfig("causal_lm")))
    src = torch.randint(3, 20, (2, 6))
    src_mask = torch.ones(2, 6, dtype=torch.long)
    src_mask[1, 4:] = 0
    bos = torch.ones(2, 1, dtype=torch.long)
    inputs = {"src_ids": src, "src_mask": src_mask}
    for beams in (1, 2):
        kw = dict(max_new_tokens=5, num_beams=beams, model_inputs=inputs)
        cached = generate(model, bos, **kw)
        assert cached.shape == (2, 6)
        assert torch.equal(cached, generate(model, bos, use_cache=False, **kw))
    # the old entry point returns the new tokens only
    assert torch.equal(greedy(model, {"input_ids": bos, **inputs}, 5), generate(model, bos, max_new_tokens=5,
                                                                                  model_inputs=inputs)[:, 1:])


def test_top_k_masks_exactly_the_smaller_logits():
    logits = torch.tensor([[1.0, 5.0, 3.0, 3.0, -2.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
    out = top_k_filter(logits, 2)
    kept = torch.isfinite(out)
    assert kept.tolist() == [[False, True, True, True, False], [False, False, False, True, True]]  # tie kept
    assert torch.equal(out[kept], logits[kept])
    assert torch.equal(top_k_filter(logits, 0), logits)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    kept = lambda p: torch.isfinite(top_p_filter(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.5) == [True, False, False, False]
    assert kept(0.7) == [True, True, False, False]
    assert kept(0.9) == [True, True, True, False]
    assert kept(0.99) == [True, True, True, True]
    assert kept(0.01) == [True, False, False, False]  # the most probable token always stays
    shuffled = logits[:, [2, 0, 3, 1]]
    assert torch.isfinite(top_p_filter(shuffled, 0.7))[0].tolist() == [False, True, False, True]


@pytest.mark.parametrize("num_beams, do_sample", [(1, False), (1, True), (3, False)])
@pytest.mark.parametrize("repetition_penalty, no_repeat_ngram_size", [(1.8, 0), (1.0, 2), (0.7, 3), (1.3, 1)])
def test_repetition_penalty_and_ngram_ban_equal_hf(gpt2_pair, num_beams, do_sample, repetition_penalty,
                                                  no_repeat_ngram_size):
    """Hugging Face's RepetitionPenaltyLogitsProcessor and NoRepeatNGramLogitsProcessor, on logits (greedy,
    sampling) and on log-probabilities (beam search), the left padding of a batch included."""
    hf, ours = gpt2_pair
    ids, mask = _left_padded(PROMPTS)
    kw = dict(max_new_tokens=12, do_sample=do_sample, num_beams=num_beams, top_k=0, eos_token_id=EOS,
              pad_token_id=PAD, repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)
    torch.manual_seed(7)
    ref = hf.generate(ids, attention_mask=mask, **kw)
    torch.manual_seed(7)
    out = generate(ours, ids, mask, **kw)
    assert torch.equal(out, ref)
    n, start = no_repeat_ngram_size, ids.shape[1]
    for row in out.tolist() if n else []:  # no new token ends an n-gram that occurred before it (up to eos)
        end = row.index(EOS, start) + 1 if EOS in row[start:] else len(row)
        for j in range(max(start, n - 1), end):
            gram = row[j - n + 1: j + 1]
            assert all(row[i - n + 1: i + 1] != gram for i in range(n - 1, j)), (row, j)


def test_the_rules_change_what_greedy_writes(gpt2_pair):
    """A real test of the parity above: without them greedy repeats itself on these prompts."""
    _, ours = gpt2_pair
    ids, mask = _left_padded(PROMPTS)
    plain = generate(ours, ids, mask, max_new_tokens=12)
    banned = generate(ours, ids, mask, max_new_tokens=12, no_repeat_ngram_size=2)
    penalised = generate(ours, ids, mask, max_new_tokens=12, repetition_penalty=1.8)
    assert not torch.equal(plain, banned) and not torch.equal(plain, penalised)
    with pytest.raises(ValueError, match="repetition_penalty > 0"):
        generate(ours, ids, mask, max_new_tokens=2, repetition_penalty=0.0)
