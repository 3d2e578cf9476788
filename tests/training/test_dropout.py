"""training/dropout.py: the counter-based mask's statistics, and DropLinear (dropout + LoRA A in one autograd step
that saves A's input instead of the dropped copy). The Triton kernel is checked against the torch arithmetic on the
GPU at first use (dropout._kernel_for); here the torch arithmetic runs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from envdoctor.training.dropout import DropoutSeeds, HashDropout, drop_linear, keep_mask  # noqa: E402


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_the_keep_rate_is_one_minus_p_and_sites_are_independent(p):
    seeds = DropoutSeeds(torch.device("cpu"), start=3)
    x = torch.empty(400_000)
    a, b = keep_mask(seeds.base, 0, x, p), keep_mask(seeds.base, 1, x, p)
    assert abs(a.float().mean().item() - (1 - p)) < 0.003
    both = (a & b).float().mean().item()  # independent sites: P(keep, keep) = (1 - p)^2
    assert abs(both - (1 - p) ** 2) < 0.004
    seeds.advance()
    assert not torch.equal(a, keep_mask(seeds.base, 0, x, p))


def _pair(p: float):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 16, generator=g, requires_grad=True)
    a = torch.randn(4, 16, generator=g, requires_grad=True)
    return x, a, HashDropout(p, DropoutSeeds(torch.device("cpu"), start=11))


def test_drop_linear_is_linear_of_the_dropped_input_with_the_same_gradients():
    x, a, drop = _pair(0.3)
    want = torch.nn.functional.linear(drop(x), a)
    gx, ga = torch.autograd.grad(want.square().sum(), (x, a))
    got = drop_linear(x, a, drop, None)
    hx, ha = torch.autograd.grad(got.square().sum(), (x, a))
    assert torch.allclose(got, want) and torch.allclose(hx, gx) and torch.allclose(ha, ga)
    drop.eval()  # eval mode: no dropout, the plain matmul
    assert torch.allclose(drop_linear(x, a, drop, None), torch.nn.functional.linear(x, a))


def test_drop_linear_saves_its_input_not_the_dropped_copy():
    x, a, drop = _pair(0.3)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        drop_linear(x, a, drop, None)
    assert saved and all(t.data_ptr() in (x.data_ptr(), a.data_ptr()) for t in saved)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        torch.nn.functional.linear(drop(x), a)  # what it replaces keeps a (tokens x hidden) copy of dropout(x)
    assert any(t.numel() == x.numel() and t.data_ptr() != x.data_ptr() for t in saved)


def test_drop_linear_in_a_compute_dtype_matches_the_autocast_path():
    x, a, drop = _pair(0.2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = torch.nn.functional.linear(drop(x), a)
        got = drop_linear(x, a, drop, torch.bfloat16)
    assert got.dtype == want.dtype == torch.bfloat16
    assert torch.allclose(got.float(), want.float(), rtol=2e-2, atol=2e-2)
    ga = torch.autograd.grad(got.float().sum(), a)[0]
    assert ga.dtype == torch.float32  # the adapter's gradient in its own dtype, as autocast gives it
