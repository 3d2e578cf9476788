"""optim.paged_adamw's multi-tensor step against bitsandbytes' own PagedAdamW32bit step on the GPU.

The parameters are the real run's adapters: LoRA r64 on q/k/v/o of 32 Llama-8B layers (A 64x4096, B 4096x64 for q
and o, 1024x64 for k and v): 256 fp32 tensors, 54.5M values, the 262144-value ones in bitsandbytes' paged
(managed) state buffers, the 65536-value ones in ordinary CUDA tensors. Nothing is timed.

How close, and why not closer: bitsandbytes builds its CUDA kernels with --use_fast_math (CMakeLists.txt), so its
kOptimizer32bit2State computes powf, the division and sqrtf approximately; the multi-tensor step computes the
corrections in double (rounded to fp32) and uses torch's correctly rounded division and sqrt. The moments do not
touch those (multiplies and adds only: an ulp or two where the two compilers fuse differently), so states are held
to rtol 2e-6 (plus 1e-6 of the tensor's largest value, for state1's near-cancellations). The parameters' update
carries the kernel's approximations: with betas (0.5, 0.75) powf's error is not amplified (1 - beta2**step is not
small) and the update is held to 1e-5 of its size; with the default betas (0.9, 0.999), 1 - 0.999**step amplifies
the fast powf's error up to ~1e-4 in correction2, and the update is held to 1e-3 of its size. The weight decay's
place (after the update in the kernel, before it in bitsandbytes' CPU backend) moves the update by lr * wd = 1e-3 of
its size: the first case tells the two apart.

Skipped where torch sees no CUDA device (CI has none: the CPU paths are in test_optim); run on the GPU machine with
`python -m pytest tests/training/test_gpu_optim.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU kernels: needs a CUDA device")

LAYER = [(64, 4096), (4096, 64), (64, 4096), (1024, 64), (64, 4096), (1024, 64), (64, 4096), (4096, 64)]
SHAPES = LAYER * 32
LR, WD = 1e-2, 0.1
NO_GRAD = {(5, 1), (200, 2)}  # (parameter, step) without a grad: a B of k, then an A of q


def _params(seed: int) -> list[Any]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, device="cuda", generator=g)) for s in SHAPES]


def _clone(params: list[Any]) -> list[Any]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def _groups(params: list[Any]) -> list[dict[str, Any]]:
    """Layers 0-15 at the default lr, 16-31 at a third of it."""
    half = len(params) // 2
    return [{"params": params[:half]}, {"params": params[half:], "lr": LR / 3}]


def _grads(seed: int, steps: int) -> Iterator[list[Any]]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    for s in range(steps):
        yield [None if (i, s) in NO_GRAD else torch.randn(shape, device="cuda", generator=g) * 10.0 ** (s % 3 - 2)
               for i, shape in enumerate(SHAPES)]


def _run(opts: list[Any], params: list[list[Any]], seed: int, steps: int) -> None:
    for grads in _grads(seed, steps):
        for opt, ps in zip(opts, params, strict=True):
            for p, g in zip(ps, grads, strict=True):
                p.grad = None if g is None else g.clone()
            opt.step()


def _no_update_step(opt: Any) -> Any:
    def refuse(*_: Any) -> None:
        raise AssertionError("bitsandbytes' per-parameter update_step ran")

    opt.update_step = refuse
    return opt


def _assert_close_states(a: Any, ours: list[Any], b: Any, theirs: list[Any]) -> None:
    for p, q in zip(ours, theirs, strict=True):
        sa, sb = a.state[p], b.state[q]
        assert sa["step"] == sb["step"]
        for k in ("state1", "state2"):
            x, y = sa[k].to("cuda"), sb[k].to("cuda")  # a paged buffer reads through its managed memory
            torch.testing.assert_close(x, y, rtol=2e-6, atol=1e-6 * float(y.abs().max()))


def _assert_close_params(ours: list[Any], theirs: list[Any], start: list[Any], update_tol: float) -> None:
    for p, q, s in zip(ours, theirs, start, strict=True):
        moved = float((q - s).abs().max())
        assert moved > 0
        torch.testing.assert_close(p.detach(), q.detach(), rtol=2e-6, atol=update_tol * moved)


@pytest.mark.parametrize(("betas", "update_tol"), [((0.5, 0.75), 1e-5), ((0.9, 0.999), 1e-3)])
def test_the_multi_tensor_step_is_bitsandbytes_step_on_lora_shaped_paged_states(betas, update_tol, monkeypatch):
    import bitsandbytes as bnb

    from envdoctor.training.optim import paged_adamw

    ours = _params(0)
    theirs, start = _clone(ours), [p.detach().clone() for p in ours]
    a = _no_update_step(paged_adamw(_groups(ours), lr=LR, betas=betas, weight_decay=WD))
    b = bnb.optim.PagedAdamW32bit(_groups(theirs), lr=LR, betas=betas, weight_decay=WD)
    syncs: list[int] = []
    sync = torch.cuda.synchronize

    def counted(*device: Any) -> None:
        syncs.append(1)
        sync(*device)

    per_step: list[int] = []
    for grads in _grads(1, 4):
        for ps in (ours, theirs):
            for p, g in zip(ps, grads, strict=True):
                p.grad = None if g is None else g.clone()
        monkeypatch.setattr(torch.cuda, "synchronize", counted)
        a.step()
        monkeypatch.setattr(torch.cuda, "synchronize", sync)
        per_step.append(len(syncs) - sum(per_step))
        b.step()
    assert a.per_parameter is None
    # none a step (the trainer queues the next forward behind it); the first step makes each paged buffer's CUDA
    # view once (torch.as_tensor over __cuda_array_interface__ synchronizes: 384 buffers on the H200, 2026-12-02)
    assert per_step[1:] == [0, 0, 0] and per_step[0] >= 1
    paged = [p for p in ours if p.numel() >= 1e5]
    assert paged and all(getattr(a.state[p]["state1"], "is_paged", False) for p in paged)  # bitsandbytes' buffers
    assert a.state[ours[5]]["step"] == 3 and a.state[ours[0]]["step"] == 4
    _assert_close_states(a, ours, b, theirs)
    _assert_close_params(ours, theirs, start, update_tol)

    # resume: bitsandbytes' state_dict (states now ordinary CUDA tensors) into ours, two more steps each
    resumed = _clone(theirs)
    r = _no_update_step(paged_adamw(_groups(resumed), lr=LR, betas=betas, weight_decay=WD))
    r.load_state_dict(b.state_dict())
    start = [p.detach().clone() for p in theirs]
    _run([r, b], [resumed, theirs], seed=2, steps=2)
    _assert_close_states(r, resumed, b, theirs)
    _assert_close_params(resumed, theirs, start, update_tol)
