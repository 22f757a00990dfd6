"""Parity with torch.nn.TransformerEncoderLayer / DecoderLayer on copied weights (xformer.interop.torch_nn)."""
import pytest
import torch
from torch import nn

from xformer.core import CoreConfig, build
from xformer.interop.torch_nn import load_torch_nn

D, H, FF = 32, 4, 64


def core_config(norm_first, activation):
    return CoreConfig(d_model=D, n_layers=1, n_heads=H, d_ff=FF, norm_first=norm_first, activation=activation,
                      final_norm=False, init="torch")


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_parity(norm_first, activation):
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first).eval()
    ours = build.encoder(core_config(norm_first, activation)).eval()
    load_torch_nn(ours.blocks[0], ref)

    x = torch.randn(3, 7, D)
    pad = torch.ones(3, 7, dtype=torch.bool)
    pad[1, 5:] = False
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
        expected = ref(x, src_key_padding_mask=~pad)  # torch: True = padding
        got = ours(x, padding_mask=pad)
    torch.testing.assert_close(got[pad], expected[pad], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_layer_parity(norm_first, activation):
    ref = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first).eval()
    ours = build.encoder_decoder(core_config(norm_first, activation)).decoder.eval()
    load_torch_nn(ours.blocks[0], ref)

    tgt, memory = torch.randn(2, 6, D), torch.randn(2, 4, D)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    mem_pad = torch.tensor([[True] * 4, [True, True, True, False]])
    with torch.no_grad():
        expected = ref(tgt, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=~mem_pad)
        got = ours(tgt, memory, memory_padding_mask=mem_pad)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_decoder_only_stack_parity_with_causal_encoder_layers():
    """A GPT-style decoder is a stack of self-attention layers under a causal mask."""
    cfg = CoreConfig(d_model=D, n_layers=2, n_heads=H, d_ff=FF, activation="gelu", init="torch")
    ours = build.decoder(cfg).eval()
    layers = [nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu", batch_first=True,
                                         norm_first=True).eval() for _ in range(2)]
    for block, layer in zip(ours.blocks, layers):
        load_torch_nn(block, layer)
    final = nn.LayerNorm(D)
    final.load_state_dict(ours.norm.state_dict())
    x = torch.randn(2, 8, D)
    causal = nn.Transformer.generate_square_subsequent_mask(8)
    with torch.no_grad():
        h = x
        for layer in layers:
            h = layer(h, src_mask=causal, is_causal=True)
        torch.testing.assert_close(ours(x), final(h), atol=1e-5, rtol=1e-5)
