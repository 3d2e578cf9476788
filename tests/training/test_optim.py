"""optim.paged_adamw: bitsandbytes' PagedAdamW32bit without its per-parameter device syncs updates the same way
(bitsandbytes' CPU backend here; on the GPU the syncs it drops are host barriers, not ordering)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from envdoctor.training.optim import paged_adamw  # noqa: E402


def test_paged_adamw_without_per_parameter_syncs_updates_as_bitsandbytes_does():
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(64, 32)) for _ in range(3)] + [torch.nn.Parameter(torch.randn(8))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    start = [p.detach().clone() for p in ours]
    a = paged_adamw(ours, lr=1e-2, weight_decay=0.01)
    b = bnb.optim.PagedAdamW32bit(theirs, lr=1e-2, weight_decay=0.01)
    assert isinstance(a, bnb.optim.PagedAdamW32bit) and type(a).step is not type(b).step
    for _ in range(4):
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            g = torch.randn_like(p)
            p.grad, q.grad = (None, None) if i == 3 and _ == 1 else (g.clone(), g.clone())  # a step without a grad
        a.step()
        b.step()
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs, strict=True))
    assert all(not torch.equal(p, s) for p, s in zip(ours, start, strict=True))
    assert a.state_dict()["state"].keys() == b.state_dict()["state"].keys()
