"""The trainer's GPU kernels on the GPU: the Triton dropout, NF4 and fused LoRA kernels against the arithmetic they
replace, flash varlen against per-document SDPA, NF4 row blocks against the whole weight, and a captured step's
replay against eager autograd on a tiny random NF4 Llama (the optimizer: test_gpu_optim.py).

Skipped where torch sees no CUDA device (CI has none: the CPU paths are in test_dropout, test_varlen, test_lean,
test_optim, test_lora_fused); run on the GPU machine with `python -m pytest tests/training/test_gpu.py`.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU kernels: needs a CUDA device")


def test_the_triton_dropout_kernel_is_the_torch_arithmetic():
    from envdoctor.training import dropout

    seeds = dropout.DropoutSeeds(torch.device("cuda"), start=12345)
    x = torch.randn(3_000_001, device="cuda", dtype=torch.bfloat16)
    assert dropout._kernel_for(x, seeds.base) is not None  # compiled, and equal on its own probe
    for site, p in ((0, 0.1), (7, 0.5), (300, 0.05)):
        assert torch.equal(dropout.hash_dropout(x, seeds.base, site, p), dropout._torch(x, seeds.base, site, p))


@pytest.mark.parametrize(("m", "k", "r", "p"), [(8192, 4096, 64, 0.1), (4093, 1024, 16, 0.0), (300, 4096, 8, 0.5)])
def test_the_fused_lora_kernels_compute_the_torch_ops_products(m, k, r, p):
    from envdoctor.training import dropout
    from envdoctor.training.lora_fused import TorchOps, TritonOps, ops_for

    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
    a = (torch.randn(r, k, device="cuda", generator=g) * 0.02).bfloat16()
    gz = torch.randn(m, r, device="cuda", dtype=torch.bfloat16, generator=g)
    seed = dropout.DropoutSeeds(torch.device("cuda"), start=99).base
    fast, ref = TritonOps(), TorchOps()
    assert isinstance(ops_for(x), TritonOps)  # chosen at first use: it agreed on its own probe

    def close(got, want, tol):
        return float((got.float() - want.float()).abs().max()) <= tol * float(want.float().abs().max())

    assert close(fast.drop_a(x, a, seed, 5, p), ref.drop_a(x, a, seed, 5, p), 1e-2)  # bf16 output, fp32 sums
    assert close(fast.drop_a_grad(gz, x, seed, 5, p), ref.drop_a_grad(gz, x, seed, 5, p), 1e-2)
    d1, d2 = x.clone(), x.clone()
    fast.add_drop_gz_a(d1, gz, a, seed, 5, p)
    ref.add_drop_gz_a(d2, gz, a, seed, 5, p)
    assert close(d1, d2, 1e-2)
    if p:  # the kernels drop exactly the elements HashDropout drops (zero product where the mask is off)
        ones = torch.ones_like(x)
        d3 = torch.zeros_like(x)
        fast.add_drop_gz_a(d3, torch.ones(m, r, device="cuda", dtype=torch.bfloat16), torch.ones(r, k, device="cuda",
                           dtype=torch.bfloat16), seed, 5, p)
        assert torch.equal(d3 != 0, dropout.hash_dropout(ones, seed, 5, p) != 0)


@pytest.mark.parametrize("shape", [(1024, 512), (512, 2048), (3584, 1024)])
def test_the_triton_nf4_kernel_gives_bitsandbytes_values_whole_and_in_row_blocks(shape):
    bf = pytest.importorskip("bitsandbytes.functional")
    from envdoctor.training.lean import _dequant_cuda_factory

    w = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    codes, qs = bf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    ref = bf.dequantize_4bit(codes, qs)
    mine = _dequant_cuda_factory("triton")
    assert mine is not None
    assert torch.equal(mine(codes, qs, torch.bfloat16), ref)
    parts = [blk for _, blk in mine.rows(codes, qs, torch.bfloat16, 4)]  # type: ignore[attr-defined]
    assert torch.equal(torch.cat(parts), ref)


def test_flash_varlen_matches_per_document_sdpa_with_empty_slots():
    from envdoctor.training import varlen

    ok, why = varlen._matches_sdpa(torch.device("cuda"), torch.bfloat16)
    assert ok, why
    g = torch.Generator(device="cpu").manual_seed(1)
    pos = torch.tensor([list(range(300)) + list(range(212)), list(range(512))])
    cu = varlen.cu_seqlens(pos, slots=8, max_len=512).cuda()
    q, k, v = (torch.randn(1024, h, 128, generator=g).cuda().bfloat16().requires_grad_() for h in (32, 8, 8))
    out = varlen._FlashVarlen.apply(q, k, v, cu, 512, 128 ** -0.5)
    out.float().sum().backward()
    got = [out.detach().float(), q.grad.float(), v.grad.float()]  # type: ignore[union-attr]
    q.grad = k.grad = v.grad = None
    ref = varlen._reference(q, k, v, cu, 128 ** -0.5)
    ref.float().sum().backward()
    want = [ref.detach().float(), q.grad.float(), v.grad.float()]  # type: ignore[union-attr]
    for a, b in zip(got, want, strict=True):
        assert float((a - b).abs().max()) <= 2e-2 * float(b.abs().max())


def test_nf4_row_blocks_compute_the_whole_weights_forward_and_backward():
    bnb = pytest.importorskip("bitsandbytes")
    from envdoctor.training.lean import _dequant_cuda_factory, _NF4Linear, row_blocks

    lin = bnb.nn.Linear4bit(2048, 16384, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4").cuda()
    dequant = _dequant_cuda_factory("triton")
    assert dequant is not None and row_blocks(lin, dequant, 4) == 4  # 33.5M elements: a large weight
    x = torch.randn(2, 64, 2048, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    outs, grads = [], []
    for blocks in (1, 4):
        y = _NF4Linear.apply(x, lin.weight, lin.weight.quant_state, dequant, blocks)
        (gx,) = torch.autograd.grad(y.float().square().sum(), x)
        outs.append(y.float())
        grads.append(gx.float())
    assert torch.equal(outs[0], outs[1])  # each output column is the same dot product
    assert float((grads[0] - grads[1]).abs().max()) <= 1e-2 * float(grads[0].abs().max())  # bf16 partial sums


def test_a_graphed_step_replays_what_eager_autograd_computes(tmp_path):
    pytest.importorskip("bitsandbytes")
    pytest.importorskip("peft")
    from transformers import LlamaConfig, LlamaForCausalLM

    from envdoctor.training import dist
    from envdoctor.training.fast import Levers
    from envdoctor.training.graphs import StepGraph
    from envdoctor.training.model import add_lora, freeze_base, graph_seeds, load_base, prepare
    from envdoctor.training.varlen import KEY, active, cu_seqlens

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    model = load_base(str(tmp_path), quantize="nf4", dtype="bf16", device="cuda")
    levers = Levers(graphs=True, varlen=True, dequant_blocks=4)
    freeze_base(model, levers)
    model = add_lora(model, 8, 16, 0.1, ["q_proj", "k_proj", "v_proj", "o_proj"])
    seeds, why = graph_seeds(model, levers)
    assert seeds is not None, why
    notes = prepare(model, checkpointing=True, checkpoint_layers=None, levers=levers)
    assert active(model), notes
    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = dist.loss_module(model, True, 32, 128)
    step = StepGraph(loss_fn, params, torch.bfloat16, seeds, 1.0, accumulate=False)

    def batch(seed: int, cuts: list[int]) -> dict:
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, 512, (2, 128), generator=g)
        pos = torch.stack([torch.cat([torch.arange(c), torch.arange(128 - c)]) for c in cuts])
        return {"input_ids": ids.cuda(), "labels": ids.clone().cuda(), "position_ids": pos.cuda(),
                KEY: cu_seqlens(pos, 8, 128).cuda()}

    step(batch(1, [50, 128]))
    assert step.outcome is not None and step.outcome.ok, step.outcome
    b2 = batch(2, [90, 30])
    replayed = float(step(b2))
    graph_grads = [p.grad.clone() for p in params]
    with torch.autocast("cuda", dtype=torch.bfloat16):  # the same masks: the counter advanced before the replay
        eager = loss_fn(b2["input_ids"], b2["labels"], b2["position_ids"], b2[KEY])
    want = torch.autograd.grad(eager, params)
    assert abs(replayed - float(eager)) <= 1e-3 * abs(float(eager))
    num = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm((a - b).float())
                                                for a, b in zip(graph_grads, want, strict=True)]))
    den = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(b.float()) for b in want]))
    assert float(num) <= 2e-2 * float(den)
