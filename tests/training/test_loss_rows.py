"""loss_rows: the torch reference of one chunk's cross-entropy rows against fp64 autograd, the chooser's probe, and
the chunked loss through it against F.cross_entropy (CPU; the Triton kernel is compared on the GPU in
test_gpu_loss.py and at first use)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from envdoctor.training import loss_rows  # noqa: E402
from envdoctor.training.fast import chunked_linear_cross_entropy  # noqa: E402

F = torch.nn.functional


def _case(n, v, dtype, seed=0, ignored=(1, 4)):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, v, generator=g, dtype=torch.float64) * 3).to(dtype)
    labels = torch.randint(0, v, (n,), generator=g)
    labels[list(ignored)] = loss_rows.IGNORE_INDEX
    return logits, labels


def _truth(logits, labels, scale, n):
    """fp64 autograd: the summed loss of the scaled rows, and the gradient of (that sum / n) for the logits."""
    x = logits.double().requires_grad_()
    total = F.cross_entropy(x * scale, labels, ignore_index=loss_rows.IGNORE_INDEX, reduction="sum")
    (total / n).backward()
    return total.detach(), x.grad


@pytest.mark.parametrize("scale", [1.0, 0.6, 2.5])
@pytest.mark.parametrize("n", [None, 40])  # None: the mean over the valid rows; 40: over a larger batch's tokens
def test_the_reference_is_the_fp64_cross_entropy_and_its_gradient(scale, n):
    logits, labels = _case(9, 77, torch.float64)
    n = n or int((labels != loss_rows.IGNORE_INDEX).sum())
    want_loss, want_grad = _truth(logits, labels, scale, n)
    inv_n = torch.tensor(1.0 / n, dtype=torch.float64)
    loss, grad = loss_rows.rows(logits.clone(), labels, scale, inv_n, True)
    assert loss.dtype == torch.float64 and grad is not None and grad.dtype == torch.float64
    assert abs(loss.item() - want_loss.item()) < 1e-10
    assert torch.allclose(grad, want_grad, rtol=0, atol=1e-14)
    assert torch.all(grad[[1, 4]] == 0)  # ignored rows: no gradient at all


def test_the_reference_on_bf16_logits_computes_in_fp32_and_writes_the_gradient_over_them():
    logits, labels = _case(12, 1000, torch.bfloat16)
    n = int((labels != loss_rows.IGNORE_INDEX).sum())
    want_loss, want_grad = _truth(logits, labels, 0.8, n)  # the truth of these bf16 values, in fp64
    buf = logits.clone()
    loss, grad = loss_rows.rows(buf, labels, 0.8, torch.tensor(1.0 / n), True)
    assert loss.dtype == torch.float32 and grad is buf and grad.dtype == torch.bfloat16
    assert abs(loss.item() - want_loss.item()) <= 1e-5 * abs(want_loss.item())
    err = (grad.double() - want_grad).abs().max().item()
    assert err <= 2 ** -8 * want_grad.abs().max().item()  # one bf16 rounding of the fp32 gradient


def test_without_gradient_only_the_loss_comes_back():
    logits, labels = _case(6, 50, torch.float32)
    with_grad, _ = loss_rows.rows(logits.clone(), labels, 1.3, torch.tensor(0.25), True)
    loss, grad = loss_rows.rows(logits.clone(), labels, 1.3, torch.tensor(0.25), False)
    assert grad is None and loss.item() == with_grad.item()


def test_rows_that_are_all_ignored_cost_nothing_and_get_no_gradient():
    logits, labels = _case(5, 30, torch.float64, ignored=range(5))
    loss, grad = loss_rows.rows(logits.clone(), labels, 1.0, torch.tensor(1.0, dtype=torch.float64), True)
    assert loss.item() == 0.0 and grad is not None and torch.count_nonzero(grad) == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_the_chooser_gives_the_reference_off_cuda(dtype):
    assert loss_rows.rows_for(torch.zeros(2, 3, dtype=dtype)) is loss_rows.rows


def _fake_kernel(mistake):
    """A fake kernel: the reference with one deliberate mistake, for the probe to catch."""
    def fake(logits, labels, scale, inv_n, grad):
        if mistake == "no scale in the gradient":
            loss, _ = loss_rows.rows(logits.clone(), labels, scale, inv_n, False)
            _, g = loss_rows.rows(logits * scale, labels, 1.0, inv_n, grad)
            return loss, g
        if mistake == "ignored rows counted":
            return loss_rows.rows(logits, labels.clamp(min=0), scale, inv_n, grad)
        if mistake == "columns past the first block lost":  # the probe's vocabulary runs past 32768
            cut = logits.clone()
            cut[:, 32768:] = -1e4
            return loss_rows.rows(cut, labels, scale, inv_n, grad)
        raise AssertionError(mistake)
    return fake


def test_the_probe_accepts_the_reference_itself():
    assert loss_rows._agree(loss_rows.rows, torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize("mistake", ["no scale in the gradient", "ignored rows counted",
                                     "columns past the first block lost"])
def test_the_probe_rejects_a_kernel_with_a_mistake(mistake):
    assert not loss_rows._agree(_fake_kernel(mistake), torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize(("needs", "scale"), [((True, True), 1.0), ((True, True), 0.7), ((True, False), 1.9),
                                              ((False, True), 1.0), ((False, False), 0.5)])
def test_the_chunked_loss_through_loss_rows_is_cross_entropy_with_autograd(needs, scale):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(29, 12, dtype=torch.float64, generator=g, requires_grad=needs[0])
    w = torch.randn(41, 12, dtype=torch.float64, generator=g, requires_grad=needs[1])
    labels = torch.randint(0, 41, (29,), generator=g)
    labels[[0, 7, 8, 28]] = -100
    loss = chunked_linear_cross_entropy(h, w, labels, chunk=6, scale=scale)
    ref = F.cross_entropy(scale * (h.detach() @ w.detach().t()), labels, ignore_index=-100)
    assert abs(loss.item() - ref.item()) < 1e-10
    if not any(needs):
        assert not loss.requires_grad
        return
    loss.backward()
    got = [t.grad.clone() for t in (h, w) if t.requires_grad]
    hr, wr = h.detach().clone().requires_grad_(needs[0]), w.detach().clone().requires_grad_(needs[1])
    F.cross_entropy(scale * (hr @ wr.t()), labels, ignore_index=-100).backward()
    for mine, theirs in zip(got, [t.grad for t in (hr, wr) if t.requires_grad], strict=True):
        assert torch.allclose(mine, theirs, rtol=0, atol=1e-12)
