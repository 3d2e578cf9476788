"""optim.paged_adamw: bitsandbytes' PagedAdamW32bit with a multi-tensor step updates as bitsandbytes does.

On the CPU (here) bitsandbytes' step is its CPU backend (backends/cpu/ops.py, _optimizer_update_32bit_cpu) and the
multi-tensor step runs that backend's very torch ops, in its order, on all parameters at once: the parameters and
states agree to the bit (torch.equal), with weight decay, two groups of different lr, a parameter without a grad
for a step (so one group holds two step counts), and a resume across the two optimizers' state_dicts.

bitsandbytes' CUDA kernel (kernels.cu, kOptimizer32bit2State<float, ADAM>) differs from its CPU backend: it applies
the weight decay after the update, not before, and computes its scalars (1 - beta2, the corrections) in C floats
(1.0f - 0.999f is 0.00099998713, 1.3e-5 from the double's 0.001). The multi-tensor step follows each: the CUDA
order is checked here on CPU tensors against an fp32 transcription of the kernel's ADAM case, and on the GPU against
bitsandbytes itself (test_gpu_optim.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from envdoctor.training import optim  # noqa: E402
from envdoctor.training.optim import paged_adamw  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Paged optimizers are not supported on CPU")

SHAPES = [(64, 32), (32, 64), (16, 8), (8,)]


def _params(seed: int = 0, dtype: Any = None) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype or torch.float32)) for s in SHAPES]


def _clone(params: list[Any]) -> list[Any]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def _groups(params: list[Any]) -> list[dict[str, Any]]:
    """Two groups: the default lr, and a lower one (both with the default weight decay)."""
    return [{"params": params[:2]}, {"params": params[2:], "lr": 3e-3}]


def _grads(seed: int, steps: int) -> Iterator[list[Any]]:
    """Per step, one gradient per parameter (None: no grad for that step), of varied scale."""
    g = torch.Generator().manual_seed(seed)
    for s in range(steps):
        scale = 10.0 ** (s % 3 - 2)
        yield [None if (i, s % 4) in ((1, 0), (3, 2)) else torch.randn(shape, generator=g) * scale
               for i, shape in enumerate(SHAPES)]


def _run(opts: list[Any], params: list[list[Any]], seed: int, steps: int) -> None:
    """Step every optimizer over the same gradients (a copy each)."""
    for grads in _grads(seed, steps):
        for opt, ps in zip(opts, params, strict=True):
            for p, g in zip(ps, grads, strict=True):
                p.grad = None if g is None else g.clone().to(p.dtype)
            opt.step()


def _no_update_step(opt: Any) -> Any:
    """bitsandbytes' per-parameter update made to fail on `opt`: the multi-tensor step must not call it."""
    def refuse(*_: Any) -> None:
        raise AssertionError("bitsandbytes' per-parameter update_step ran")

    opt.update_step = refuse
    return opt


def _counting_update_step(opt: Any) -> list[int]:
    calls: list[int] = []
    own = opt.update_step

    def count(*args: Any) -> None:
        calls.append(1)
        own(*args)

    opt.update_step = count
    return calls


def _assert_same(a: Any, ours: list[Any], b: Any, theirs: list[Any]) -> None:
    """Bit-equal parameters and states (state1, state2, step) on the CPU."""
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p, q)
        sa, sb = a.state[p], b.state[q]
        assert sa.keys() == sb.keys()
        assert sa["step"] == sb["step"]
        for k in sa:
            if isinstance(sa[k], torch.Tensor):
                assert torch.equal(sa[k], sb[k]), k


def test_the_multi_tensor_step_is_bitsandbytes_step_to_the_bit_on_the_cpu():
    ours, theirs = _params(), _params()
    start = [p.detach().clone() for p in ours]
    a = _no_update_step(paged_adamw(_groups(ours), lr=1e-2, weight_decay=0.1))
    b = bnb.optim.PagedAdamW32bit(_groups(theirs), lr=1e-2, weight_decay=0.1)
    assert isinstance(a, bnb.optim.PagedAdamW32bit) and type(a).step is not type(b).step
    assert type(a).init_state is type(b).init_state  # bitsandbytes allocates the states
    _run([a, b], [ours, theirs], seed=1, steps=7)
    assert a.per_parameter is None
    assert a.state[ours[0]]["step"] != a.state[ours[1]]["step"]  # one group, two step counts
    assert a.state[ours[2]]["step"] != a.state[ours[3]]["step"]
    _assert_same(a, ours, b, theirs)
    assert all(not torch.equal(p, s) for p, s in zip(ours, start, strict=True))


def test_a_state_dict_resumes_across_bitsandbytes_optimizer_and_ours_both_ways():
    for first, then in ((bnb.optim.PagedAdamW32bit, paged_adamw), (paged_adamw, bnb.optim.PagedAdamW32bit)):
        ps = _params()
        opt = first(_groups(ps), lr=1e-2, weight_decay=0.1)
        if first is paged_adamw:
            _no_update_step(opt)
        _run([opt], [ps], seed=2, steps=5)
        buf = io.BytesIO()
        torch.save(opt.state_dict(), buf)
        resumed = _clone(ps)
        r = then(_groups(resumed), lr=1e-2, weight_decay=0.1)
        buf.seek(0)
        r.load_state_dict(torch.load(buf, weights_only=False))
        _no_update_step(r if then is paged_adamw else opt)  # ours continues on its multi-tensor step
        _run([opt, r], [ps, resumed], seed=3, steps=5)
        _assert_same(opt, ps, r, resumed)
        assert [r.state[p]["step"] for p in resumed] == [10, 6, 10, 8]


def test_our_state_dict_has_bitsandbytes_format():
    ours, theirs = _params(), _params()
    a = paged_adamw(_groups(ours), lr=1e-2, weight_decay=0.1)
    b = bnb.optim.PagedAdamW32bit(_groups(theirs), lr=1e-2, weight_decay=0.1)
    _run([a, b], [ours, theirs], seed=4, steps=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        x, y = sa["state"][k], sb["state"][k]
        assert x.keys() == y.keys() and x["step"] == y["step"]
        wrapped = b._FSDP_WRAPPED_QUANT_STATE_KEY
        assert x[wrapped].keys() == y[wrapped].keys() == {"state1", "state2"}


def _mock_args(**over: Any) -> Any:
    """bitsandbytes' `args` object with PagedAdamW32bit's defaults, `over` replacing some."""
    args = {"optim_bits": 32, "min_8bit_size": 4096, "max_unorm": 0.0, "skip_zeros": False} | over
    return bnb.optim.optimizer.MockArgs(args)


@pytest.mark.parametrize("case", ["max_unorm", "override", "bfloat16"])
def test_what_the_multi_tensor_step_does_not_reproduce_runs_bitsandbytes_kernels(case, monkeypatch):
    dtype = torch.bfloat16 if case == "bfloat16" else torch.float32
    extra = {"args": _mock_args(max_unorm=0.05)} if case == "max_unorm" else {}
    ours, theirs = _params(dtype=dtype), _params(dtype=dtype)
    if case == "override":  # a per-parameter lr in bitsandbytes' process-wide GlobalOptimManager, restored after
        mng = bnb.optim.GlobalOptimManager.get_instance()
        monkeypatch.setattr(mng, "pid2config", {id(ours[0]): {"lr": 1e-4}, id(theirs[0]): {"lr": 1e-4}})
    a = paged_adamw(_groups(ours), lr=1e-2, weight_decay=0.1, **extra)
    b = bnb.optim.PagedAdamW32bit(_groups(theirs), lr=1e-2, weight_decay=0.1, **extra)
    calls = _counting_update_step(a)
    _run([a, b], [ours, theirs], seed=5, steps=4)
    assert len(calls) == sum(b.state[q]["step"] for q in theirs)  # every update was bitsandbytes' own
    assert (a.per_parameter is None) == (case == "override")  # the override registry is looked at every step
    _assert_same(a, ours, b, theirs)


@pytest.mark.parametrize("setting", ["percentile_clipping", "skip_zeros", "amsgrad", "release"])
def test_each_unsupported_setting_is_decided_at_the_first_step(setting, monkeypatch):
    over: dict[str, Any] = {"skip_zeros": True} if setting == "skip_zeros" else {}
    if setting == "percentile_clipping":
        over["percentile_clipping"] = 5  # an argument of bitsandbytes before 0.50
    if setting == "release":
        monkeypatch.setattr(bnb, "__version__", "0.51.0")
    ps = _params()
    groups = _groups(ps)
    groups[1]["amsgrad"] = setting == "amsgrad"
    a = paged_adamw(groups, lr=1e-2, args=_mock_args(**over))
    calls = _counting_update_step(a)
    _run([a], [ps], seed=6, steps=2)
    assert a.per_parameter is not None and calls


def test_a_group_added_later_is_decided_again():
    ps = _params()
    a = _no_update_step(paged_adamw(ps, lr=1e-2))
    _run([a], [ps], seed=6, steps=2)
    assert a.per_parameter is None
    half = torch.nn.Parameter(torch.randn(4, dtype=torch.bfloat16))
    a.add_param_group({"params": [half]})
    del a.update_step  # bitsandbytes' own again, counted
    calls = _counting_update_step(a)
    half.grad = torch.randn(4, dtype=torch.bfloat16)
    a.step()
    assert a.per_parameter is not None and calls


def test_a_state_is_used_where_it_lies_and_never_through_a_copy():
    """On its parameter's device a state is itself; elsewhere only a paged buffer has a view (its own memory, on
    CUDA), else None: bitsandbytes' update_step takes that parameter, and a copy would lose the update."""
    views = optim._StateViews()
    here = torch.zeros(4)
    assert views.of(here, here.device) is here
    assert views.of(torch.zeros(4), torch.device("cuda", 0)) is None  # not paged
    paged = torch.zeros(4)
    paged.is_paged = True  # type: ignore[attr-defined]
    if not torch.cuda.is_available():
        assert views.of(paged, torch.device("cuda", 0)) is None
    assert views.of(paged, torch.device("cpu")) is paged


# bitsandbytes' CUDA kernel, transcribed: kernels.cu (0.45-0.50.1), kOptimizer32bit2State<float, ADAM>, every scalar a
# C float (0-dim fp32 tensors here), the weight decay after the update.
def _kernel(p, g, s1, s2, *, lr, beta1, beta2, eps, wd, step):  # type: ignore[no-untyped-def]
    f = torch.tensor
    lr, beta1, beta2, eps, wd = (f(x, dtype=torch.float32) for x in (lr, beta1, beta2, eps, wd))
    one, st = f(1.0), f(float(step))
    correction1 = one - torch.pow(beta1, st)
    correction2 = torch.sqrt(one - torch.pow(beta2, st))
    step_size = -lr * correction2 / correction1
    s1.copy_(s1 * beta1 + (one - beta1) * g)
    s2.copy_(s2 * beta2 + (one - beta2) * (g * g))
    p.copy_(p + step_size * (s1 / (torch.sqrt(s2) + eps * correction2)))
    if wd > 0:
        p.copy_(p * (one - lr * wd))


def _kernel_order_gap(kernel: bool) -> dict[str, float]:
    """After 12 steps of _adam (kernel=True: the CUDA order) against the transcription: per tensor kind, the worst
    |ours - kernel| - 1e-6 |kernel|, as a fraction of that tensor's largest value."""
    hp = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "wd": 0.1}
    group = {"lr": hp["lr"], "betas": (hp["beta1"], hp["beta2"]), "eps": hp["eps"], "weight_decay": hp["wd"]}
    gen = torch.Generator().manual_seed(7)
    ours = [torch.randn(s, generator=gen) for s in SHAPES]
    ref = [p.clone() for p in ours]
    s_ours = [[torch.zeros_like(p) for p in ours] for _ in range(2)]
    s_ref = [[torch.zeros_like(p) for p in ours] for _ in range(2)]
    for step in range(1, 13):
        grads = [torch.randn(p.shape, generator=gen) * 10.0 ** (step % 4 - 3) for p in ours]
        optim._adam(ours, grads, s_ours[0], s_ours[1], optim._hyper(group, step, kernel), kernel)
        for p, g, m, v in zip(ref, grads, s_ref[0], s_ref[1], strict=True):
            _kernel(p, g, m, v, step=step, **hp)
    gap = {}
    for name, xs, ys in (("p", ours, ref), ("state1", s_ours[0], s_ref[0]), ("state2", s_ours[1], s_ref[1])):
        gap[name] = max(float(((x - y).abs() - 1e-6 * y.abs()).max() / y.abs().max()) for x, y in zip(xs, ys, strict=True))
    return gap


def test_the_cuda_order_is_the_kernels_arithmetic_within_fp32_rounding():
    """rtol 1e-6 plus 5e-7 of the tensor's largest value. The worst seen is ~1e-7, in state1 where
    s1 * beta1 and (1 - beta1) * g nearly cancel (an ulp of the larger term, not of the result); the rest is an ulp
    or two from where the two round: fused multiply-adds on the CPU, addcdiv's (value * s1) / denom on the CPU, the
    corrections' pow in double against powf. The CPU backend's order misses by 1e-5 and more: the weight decay
    before the update (p) and 1 - beta2 in double (state2), so the check tells the two apart."""
    kernel, cpu = _kernel_order_gap(True), _kernel_order_gap(False)
    assert max(kernel.values()) <= 5e-7, kernel
    assert cpu["p"] > 5e-6 and cpu["state2"] > 5e-6, cpu


def test_the_cuda_scalars_are_c_float_arithmetic():
    import numpy as np

    h = optim._hyper({"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}, 3, True)
    f = np.float32
    assert h.one_minus_beta2 == float(f(1.0) - f(0.999)) != 1.0 - 0.999
    assert h.decay == float(f(1.0) - f(1e-2) * f(0.1))
    assert h.step_size == float(-f(1e-2) * f(np.sqrt(f(1.0) - f(0.999) ** 3)) / (f(1.0) - f(0.9) ** 3))
    assert optim._hyper({"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}, 3, True).decay is None
