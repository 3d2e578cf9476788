"""The lean NF4 + LoRA forwards compute what bitsandbytes + peft compute (real NF4 weights on the CPU backend)."""

from __future__ import annotations

import torch


def _nf4_lora(model_dir, dropout: float):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=q, dtype=torch.float32,
                                                 device_map={"": "cpu"})
    for p in model.parameters():
        p.requires_grad_(False)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: make the adapters (and the grads of A) non-trivial
            p.data = torch.randn(p.shape, generator=g) * 0.1
    model.train()
    return model


def _step(model, ids):
    torch.manual_seed(7)  # the same dropout masks in both runs
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss.item(), grads


def test_lean_forward_and_grads_equal_bnb_and_peft_nf4_on_cpu(tiny):
    from envdoctor.training.lean import apply_lean

    model = _nf4_lora(tiny["model"], dropout=0.1)
    ids = torch.randint(4, 40, (2, 12), generator=torch.Generator().manual_seed(3))
    ref_loss, ref_grads = _step(model, ids)
    ok, note = apply_lean(model)
    assert ok and "8 LoRA + 6 plain NF4 linears" in note, note
    loss, grads = _step(model, ids)
    assert abs(loss - ref_loss) < 1e-5 * abs(ref_loss)
    assert grads.keys() == ref_grads.keys() and len(grads) == 16
    for n, g in grads.items():
        assert torch.allclose(g, ref_grads[n], rtol=1e-4, atol=1e-6), n


def test_lean_falls_back_to_peft_when_adapters_are_disabled(tiny):
    from envdoctor.training.lean import apply_lean

    model = _nf4_lora(tiny["model"], dropout=0.0)
    ids = torch.randint(4, 40, (1, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad(), model.disable_adapter():
        ref = model(input_ids=ids).logits
    apply_lean(model)
    with torch.no_grad(), model.disable_adapter():
        out = model(input_ids=ids).logits
    assert torch.allclose(out, ref, atol=1e-5)
    with torch.no_grad():  # adapters on again: a different function
        assert not torch.allclose(model(input_ids=ids).logits, ref, atol=1e-3)


def test_remove_lean_restores_only_its_own_forwards(tiny):
    from envdoctor.training.lean import apply_lean, remove_lean

    model = _nf4_lora(tiny["model"], dropout=0.0)
    other = model.get_base_model().model.norm
    other.forward = lambda x: x  # someone else's instance patch (liger binds its kernels this way)
    apply_lean(model)
    assert apply_lean(model)[1].startswith("lean NF4 path off")  # twice: nothing wrapped twice
    assert remove_lean(model) == 8 + 8 + 6 and "forward" in other.__dict__


def test_the_row_block_forward_and_backward_equal_the_whole_weight():
    """A large weight's forward writes each block's output columns, its backward sums grad[:, rows] @ W[rows]. Off the GPU bitsandbytes' codes cannot
    be sliced this way, so a dense weight stands in for the store here (the kernel path is checked bit for bit
    against bitsandbytes' own dequantisation on the GPU, lean._same_as_public); this checks the block algebra."""
    from types import SimpleNamespace

    from envdoctor.training.lean import _NF4Linear

    g = torch.Generator().manual_seed(0)
    w = torch.randn(10, 6, generator=g, dtype=torch.float64)

    def dequant(weight, qs, dtype):
        return weight.to(dtype)

    def rows(weight, qs, dtype, blocks):
        step = -(-weight.shape[0] // blocks)
        for r0 in range(0, weight.shape[0], step):
            yield r0, weight[r0:r0 + step].to(dtype)

    dequant.rows = rows
    grads = []
    bias = torch.randn(10, generator=g, dtype=torch.float64)
    for blocks in (1, 3, 4):  # 4 blocks of 10 rows: 3, 3, 3, 1
        for b in (None, bias):
            x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64,
                            requires_grad=True)
            y = _NF4Linear.apply(x, w, SimpleNamespace(shape=w.shape), dequant, blocks, b)
            assert torch.allclose(y, torch.nn.functional.linear(x, w, b))
            y.pow(2).sum().backward()
            grads.append(x.grad)
    assert all(torch.allclose(grads[0], gr) for gr in grads[2::2]) and grads[0].shape == (2, 5, 6)
    assert all(torch.allclose(grads[1], gr) for gr in grads[3::2])


def test_kept_weights_are_dequantised_once_and_train_as_the_step_dequantising(tiny, monkeypatch):
    """`keep` (a plan with memory to spare): each NF4 weight dequantised once at set-up, none in the steps, and the
    same loss and gradients as dequantising twice a step (bitsandbytes' CPU backend; the dequantisation is
    deterministic and the base frozen)."""
    from envdoctor.training import lean

    model = _nf4_lora(tiny["model"], dropout=0.0)
    ids = torch.randint(4, 40, (2, 12), generator=torch.Generator().manual_seed(3))
    lean.apply_lean(model)
    ref_loss, ref_grads = _step(model, ids)
    lean.remove_lean(model)
    calls = []
    public = lean._dequant_public
    monkeypatch.setattr(lean, "_dequant_public", lambda *a: calls.append(a[0].shape) or public(*a))
    ok, note = lean.apply_lean(model, keep=True)
    assert ok and "kept dequantised" in note, note
    at_setup = len(calls)
    assert at_setup >= 14  # the 14 NF4 linears (+ the shape checks)
    loss, grads = _step(model, ids)
    _step(model, ids)
    assert len(calls) == at_setup  # two steps, forward and backward: not one more dequantisation
    assert loss == ref_loss and grads.keys() == ref_grads.keys()
    assert all(torch.equal(g, ref_grads[n]) for n, g in grads.items())


def test_lean_takes_qwen2s_biased_q_k_v_and_computes_what_bnb_and_peft_do(tmp_path, make_tok):
    """Qwen2's q/k/v have a (frozen) bias: the lean forwards add it (whole weights and row blocks), so its
    attention is not left to bitsandbytes' and peft's modules."""
    from envdoctor._certify.probes.family import tiny_model
    from envdoctor.training.lean import apply_lean

    torch.manual_seed(0)
    m = tiny_model("qwen2", vocab_size=len(make_tok()))
    for name, b in m.named_parameters():
        if name.endswith("proj.bias"):  # transformers starts them at zero: make them matter
            b.data.normal_(0.0, 0.5)
    m.save_pretrained(tmp_path)
    model = _nf4_lora(tmp_path, dropout=0.1)
    ids = torch.randint(4, 40, (2, 12), generator=torch.Generator().manual_seed(3))
    ref_loss, ref_grads = _step(model, ids)
    ok, note = apply_lean(model)
    assert ok and "8 LoRA + 6 plain NF4 linears" in note, note  # before: 2 LoRA (o_proj) + 6 plain
    loss, grads = _step(model, ids)
    assert abs(loss - ref_loss) < 1e-5 * abs(ref_loss)
    assert grads.keys() == ref_grads.keys() and len(grads) == 16
    for n, g in grads.items():
        assert torch.allclose(g, ref_grads[n], rtol=1e-4, atol=1e-6), n
