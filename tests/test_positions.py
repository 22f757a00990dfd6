"""Position encodings equal their formulas; RoPE keeps norms and is relative."""
import math

import pytest
import torch

from xformer.core import RotaryEmbedding
from xformer.tokenizers.positions import LearnedPositions, UniformLearnedPositions, make_positions, sinusoidal_table
from xformer.tokenizers.image import interpolate_grid_positions, sincos_2d_table


def test_sinusoidal_equals_formula():
    n, d = 50, 16
    table = sinusoidal_table(n, d)
    for pos in range(n):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sincos_2d_equals_formula():
    h, w, d = 3, 5, 16
    table = sincos_2d_table(h, w, d)
    assert table.shape == (h * w, d)
    q = d // 4
    for y in range(h):
        for x in range(w):
            row = table[y * w + x]
            for k in range(q):
                omega = 1 / 10000 ** (k / q)
                expected = [math.sin(y * omega), math.sin(x * omega), math.cos(y * omega), math.cos(x * omega)]
                got = [row[k], row[q + k], row[2 * q + k], row[3 * q + k]]
                assert [g.item() for g in got] == pytest.approx(expected, abs=1e-6)


def test_sincos_2d_matches_timm():
    timm_pos = pytest.importorskip("timm.layers.pos_embed_sincos")
    ref = timm_pos.build_sincos2d_pos_embed([4, 6], 32, reverse_coord=False)
    ours = sincos_2d_table(4, 6, 32)
    torch.testing.assert_close(ours, ref.float().reshape(24, 32), atol=1e-6, rtol=0)


def test_rope_preserves_norms():
    rope = RotaryEmbedding(16)
    x = torch.randn(2, 3, 10, 16)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)


def test_rope_dot_product_depends_only_on_relative_position():
    rope = RotaryEmbedding(16)
    q, k = torch.randn(16), torch.randn(16)

    def score(p, s):
        rq = rope(q.view(1, 1, 1, 16), offset=p)
        rk = rope(k.view(1, 1, 1, 16), offset=s)
        return (rq * rk).sum().item()

    assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-4)
    assert score(7, 7) == pytest.approx(score(0, 0), abs=1e-4)
    assert score(5, 0) != pytest.approx(score(5, 4), abs=1e-3)


def test_rope_offset_equals_slice_of_longer_sequence():
    rope = RotaryEmbedding(8)
    x = torch.randn(1, 2, 6, 8)
    torch.testing.assert_close(rope(x)[:, :, 4:], rope(x[:, :, 4:], offset=4))


def test_learned_positions_reject_too_long_inputs():
    pos = LearnedPositions(8, 4)
    assert pos(5, offset=3).shape == (5, 4)
    with pytest.raises(ValueError, match="max_positions"):
        pos(6, offset=3)


def test_make_positions_rejects_unknown_kind():
    with pytest.raises(ValueError, match="learned, learned_uniform, sinusoidal"):
        make_positions("absolute", 8, 4)


def test_uniform_learned_positions_are_patchtsts_w_pos():
    torch.manual_seed(0)
    pos = make_positions("learned_uniform", 512, 64)
    assert isinstance(pos, UniformLearnedPositions) and isinstance(pos, LearnedPositions)
    w = pos.weight.detach()
    assert pos.weight.requires_grad
    assert w.abs().max() <= 0.02 and w.abs().max() > 0.0199   # U(-0.02, 0.02): bounded, and fills the range
    assert abs(w.std().item() - 0.02 / 3 ** 0.5) < 0.0005       # not N(0, 0.02)'s spread


def test_grid_interpolation_keeps_size_and_identity():
    table = torch.randn(4 * 4, 8)
    assert interpolate_grid_positions(table, (4, 4), (4, 4)) is table
    assert interpolate_grid_positions(table, (4, 4), (6, 5)).shape == (30, 8)


@pytest.mark.parametrize("old, new", [((4, 4), (6, 6)), ((6, 6), (3, 3)), ((4, 4), (6, 5)), ((8, 8), (3, 5))])
def test_grid_interpolation_equals_timm_resample(old, new):
    """Growing and shrinking (antialiased) as timm's resample_abs_pos_embed, which --init-from and images of
    another size stand in for."""
    from timm.layers import resample_abs_pos_embed
    table = torch.randn(old[0] * old[1], 8)
    theirs = resample_abs_pos_embed(table[None], new_size=list(new), old_size=list(old), num_prefix_tokens=0)[0]
    torch.testing.assert_close(interpolate_grid_positions(table, old, new), theirs, rtol=0, atol=1e-6)
