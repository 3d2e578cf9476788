"""The CPU side of training/graphs.py: the counter-based dropout that lets a CUDA graph recompute checkpointed
layers. The capture itself needs a GPU: benchmarks/bench_vs_trl.py runs it there (replay checked against eager)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from envdoctor.training.data import Example, collate  # noqa: E402
from envdoctor.training.dropout import DropoutSeeds, HashDropout, hash_dropout, use_hash_dropout  # noqa: E402


def test_the_mask_is_a_function_of_seed_site_and_element():
    seeds = DropoutSeeds(torch.device("cpu"), start=7)
    x = torch.ones(200_000)
    a, b = hash_dropout(x, seeds.base, 3, 0.1), hash_dropout(x, seeds.base, 3, 0.1)
    assert torch.equal(a, b)
    assert not torch.equal(a, hash_dropout(x, seeds.base, 4, 0.1))
    kept = (a != 0).float().mean().item()
    assert 0.895 < kept < 0.905
    assert torch.allclose(a[a != 0], torch.full_like(a[a != 0], 1 / 0.9))
    seeds.advance()
    assert not torch.equal(a, hash_dropout(x, seeds.base, 3, 0.1))


def _layer(drop: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 64), drop, torch.nn.Tanh(), torch.nn.Linear(64, 1))


def _grads(layer: torch.nn.Module, x: torch.Tensor, checkpointed: bool) -> list[torch.Tensor]:
    from torch.utils.checkpoint import checkpoint

    layer.zero_grad(set_to_none=True)
    out = checkpoint(layer, x, use_reentrant=False, preserve_rng_state=False) if checkpointed else layer(x)
    out.sum().backward()
    return [p.grad.clone() for p in layer.parameters()]


def test_a_checkpointed_recompute_without_rng_state_sees_the_forwards_mask():
    x = torch.randn(16, 32)
    layer = _layer(HashDropout(0.3, DropoutSeeds(torch.device("cpu"), start=1)))
    for plain, ckpt in zip(_grads(layer, x, False), _grads(layer, x, True), strict=True):
        assert torch.equal(plain, ckpt)


def test_nn_dropout_under_the_same_recompute_gets_another_mask():
    # why the trainer swaps it: without the RNG state the recompute draws a new mask, and the gradient is wrong
    x = torch.randn(16, 32)
    layer = _layer(torch.nn.Dropout(0.3))
    torch.manual_seed(1)
    plain = _grads(layer, x, False)
    torch.manual_seed(1)
    ckpt = _grads(layer, x, True)
    assert any(not torch.equal(a, b) for a, b in zip(plain, ckpt, strict=True))


def test_the_backward_is_the_same_mask_and_scale():
    seeds = DropoutSeeds(torch.device("cpu"))
    d = HashDropout(0.5, seeds)
    x = torch.randn(1000, requires_grad=True)
    y = d(x)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, (y != 0).float() * 2.0)
    d.eval()
    assert d(x) is x


def test_lora_dropouts_are_swapped_and_any_other_dropout_refuses():
    peft = pytest.importorskip("peft")

    class Tiny(torch.nn.Module):
        def __init__(self, p: float) -> None:
            super().__init__()
            self.q_proj = torch.nn.Linear(8, 8)
            self.drop = torch.nn.Dropout(p)

        def forward(self, x):
            return self.drop(self.q_proj(x))

    cfg = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], lora_dropout=0.1)
    model = peft.get_peft_model(Tiny(0.0), cfg)
    ok, why = use_hash_dropout(model, DropoutSeeds(torch.device("cpu")))
    assert ok and why.startswith("1 LoRA dropouts"), why
    assert any(isinstance(m, HashDropout) for m in model.modules())
    other = peft.get_peft_model(Tiny(0.2), cfg)
    ok, why = use_hash_dropout(other, DropoutSeeds(torch.device("cpu")))
    assert not ok and "Dropout" in why
    # refused means untouched: a swapped dropout whose counter never advances would repeat one mask every step
    assert not any(isinstance(m, HashDropout) for m in other.modules())


def test_a_graphed_batch_is_padded_to_the_fixed_width():
    rows = collate([Example((5, 6, 7), (-100, 6, 7), (0, 1, 2))], pad_id=0, width=6)
    assert rows["input_ids"] == [[5, 6, 7, 0, 0, 0]]
    assert rows["labels"] == [[-100, 6, 7, -100, -100, -100]]
    assert rows["position_ids"] == [[0, 1, 2, 3, 4, 5]]
