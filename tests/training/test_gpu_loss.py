"""The cross-entropy rows kernel (loss_rows.TritonRows) on the GPU: against the torch reference on bf16 logits, the
chooser's pick, and the chunked loss captured in a CUDA graph whose replay equals eager.

Skipped where torch sees no CUDA device (CI has none: the reference is tested on the CPU in test_loss_rows.py); run
on the GPU machine with `python -m pytest tests/training/test_gpu_loss.py`.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU kernels: needs a CUDA device")

F = torch.nn.functional


def _rows_case(n, v, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    logits = (torch.randn(n, v, device="cuda", generator=g) * 4).bfloat16()
    labels = torch.randint(0, v, (n,), device="cuda", generator=g)
    labels[::7] = -100
    labels[1] = v - 1  # the last column: in the last, partial block
    return logits, labels


@pytest.mark.parametrize(("n", "v"), [(300, 50_000), (512, 128_256), (3, 7)])
@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_the_kernel_computes_the_reference_loss_and_gradient_in_place(n, v, scale):
    from envdoctor.training.loss_rows import TritonRows, rows

    logits, labels = _rows_case(n, v)
    valid = labels != -100
    inv_n = valid.sum().float().reciprocal()
    fast = TritonRows()
    buf = logits.clone()
    loss, grad = fast(buf, labels, scale, inv_n, True)
    want, wgrad = rows(logits.clone(), labels, scale, inv_n, True)
    assert grad is buf and grad.dtype == torch.bfloat16 and wgrad is not None
    assert abs(loss.item() - want.item()) <= 1e-5 * abs(want.item())
    # the kernel's exp(x - lse) and the reference's exp(x - max) / sum round differently in fp32: a bf16 ulp apart
    assert (grad.float() - wgrad.float()).abs().max().item() <= 2 ** -7 * wgrad.float().abs().max().item()
    assert torch.count_nonzero(grad[~valid]) == 0
    truth = F.cross_entropy(logits.double() * scale, labels, ignore_index=-100, reduction="sum")
    assert abs(loss.item() - truth.item()) <= 1e-5 * abs(truth.item())
    only, none = fast(logits.clone(), labels, scale, inv_n, False)
    assert none is None and abs(only.item() - want.item()) <= 1e-5 * abs(want.item())


def test_the_chooser_picks_the_kernel_for_cuda_bf16_and_the_reference_for_fp32():
    from envdoctor.training.loss_rows import TritonRows, rows, rows_for

    assert isinstance(rows_for(torch.zeros(2, 3, device="cuda", dtype=torch.bfloat16)), TritonRows)
    assert rows_for(torch.zeros(2, 3, device="cuda")) is rows


def test_the_chunked_loss_is_captured_in_a_cuda_graph_and_replays_as_eager():
    from envdoctor.training.fast import chunked_linear_cross_entropy

    g = torch.Generator(device="cuda").manual_seed(1)
    t, d, v = 1536, 256, 50_000

    def inputs(ignored):
        h = torch.randn(t, d, device="cuda", generator=g).bfloat16()
        lab = torch.randint(0, v, (t,), device="cuda", generator=g)
        lab[:ignored] = -100  # a different count of valid tokens each time: 1 / n must not be baked in
        return h, lab

    w = (torch.randn(v, d, device="cuda", generator=g) * 0.05).bfloat16()
    h0, lab0 = inputs(100)
    h = h0.clone().requires_grad_()
    labels = lab0.clone()

    def step():
        loss = chunked_linear_cross_entropy(h, w, labels, chunk=512, scale=0.9)
        loss.backward()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # the kernel chosen and compiled outside the capture
        for _ in range(2):
            h.grad = None
            step()
    torch.cuda.current_stream().wait_stream(side)
    h.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = step()

    for ignored in (100, 900):
        h1, lab1 = inputs(ignored)
        with torch.no_grad():
            h.copy_(h1)
        labels.copy_(lab1)
        graph.replay()
        torch.cuda.synchronize()
        he = h1.clone().requires_grad_()
        eager = chunked_linear_cross_entropy(he, w, lab1, chunk=512, scale=0.9)
        eager.backward()
        assert static_loss.item() == eager.item() and torch.equal(h.grad, he.grad)
        hr = h1.float().requires_grad_()
        ref = F.cross_entropy(0.9 * (hr @ w.float().t()), lab1, ignore_index=-100)
        ref.backward()
        assert abs(static_loss.item() - ref.item()) <= 1e-3 * ref.item()
        err = (h.grad.float() - hr.grad).abs().max().item()
        assert err <= 2e-2 * hr.grad.abs().max().item()
