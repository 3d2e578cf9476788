"""The fast path's loss is the same function as the model's own (float64 reference on CPU)."""

from __future__ import annotations

import torch

from envdoctor.training.fast import causal_lm_loss, chunked_linear_cross_entropy, loss_chunk


def test_chunked_cross_entropy_matches_reference_values_and_grads():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(37, 16, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64, generator=g, requires_grad=True)
    labels = torch.randint(0, 50, (37,), generator=g)
    labels[[3, 20]] = -100
    loss = chunked_linear_cross_entropy(h, w, labels, chunk=8)
    loss.backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = torch.nn.functional.cross_entropy(h @ w.t(), labels, ignore_index=-100)
    ref.backward()
    assert abs(loss.item() - ref.item()) < 1e-6
    assert torch.allclose(gh, h.grad, atol=1e-7) and torch.allclose(gw, w.grad, atol=1e-7)


def test_loss_chunk_keeps_one_chunk_small():
    assert loss_chunk(128256) == 512 and loss_chunk(262144) == 256 and loss_chunk(1000) == 4096


def test_fused_loss_equals_model_loss_on_tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(cfg).double()
    ids = torch.randint(0, 300, (2, 21))
    labels = ids.clone()
    labels[0, :5] = -100
    ref = causal_lm_loss(model, ids, labels, fused=False)
    fused = causal_lm_loss(model, ids, labels, fused=True)
    assert abs(ref.item() - fused.item()) < 1e-6  # HF upcasts the logits to float32, not float64
