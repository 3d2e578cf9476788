"""lora_fused: the NF4 linear + LoRA branch in one autograd step computes peft's arithmetic (CPU: the torch ops;
the Triton kernels are compared with them on the GPU in test_gpu.py and at first use)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from envdoctor.training.dropout import hash_dropout  # noqa: E402
from envdoctor.training.lora_fused import Member, TorchOps, linears, lora_nf4  # noqa: E402


def _dense(weight, qs, dtype):  # a dense stand-in for the NF4 dequantisation: the weight as it is
    return weight.to(dtype)


def _reference(x, a, b, w, s, seed, site, p):
    drop = hash_dropout(x, seed, site, p) if p else x
    return x @ w.t() + s * ((drop @ a.t()) @ b.t())


@pytest.mark.parametrize("p", [0.0, 0.25])
def test_the_fused_step_equals_base_plus_scaled_dropped_lora_with_its_gradients(p):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 48, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.randn(6, 48, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(40, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(40, 48, generator=g, dtype=torch.float64)
    seed = torch.full((), 5, dtype=torch.int64)
    up = torch.randn(2, 7, 40, generator=g, dtype=torch.float64)

    out = lora_nf4(x, a, b, w, None, _dense, 0.5, seed, 3, p, torch.float64)
    (out * up).sum().backward()
    got = (out.detach(), x.grad.clone(), a.grad.clone(), b.grad.clone())
    x.grad = a.grad = b.grad = None
    ref = _reference(x, a, b, w, 0.5, seed, 3, p)
    (ref * up).sum().backward()
    assert out.shape == (2, 7, 40)
    for mine, theirs in zip(got, (ref.detach(), x.grad, a.grad, b.grad), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-10)
    if p:  # the mask is the HashDropout's of (seed, site): another site is another branch
        other = lora_nf4(x, a, b, w, None, _dense, 0.5, seed, 4, p, torch.float64)
        assert not torch.allclose(other, out)


def test_linears_on_a_shared_input_are_each_members_own_step_with_one_input_gradient():
    """q/k/v-like members (two with adapters and different dropout sites, one plain) in one autograd step: every
    output and gradient is what the members compute alone, an output left unused included (its gradient is zero)."""
    g = torch.Generator().manual_seed(2)
    f64 = torch.float64
    x = torch.randn(3, 5, 32, generator=g, dtype=f64, requires_grad=True)
    ws = [torch.randn(n, 32, generator=g, dtype=f64) for n in (24, 8, 8)]
    ab = [t.requires_grad_() for t in (torch.randn(4, 32, generator=g, dtype=f64), torch.randn(24, 4, generator=g, dtype=f64),
                                        torch.randn(4, 32, generator=g, dtype=f64), torch.randn(8, 4, generator=g, dtype=f64))]
    seed = torch.full((), 9, dtype=torch.int64)
    members = (Member(ws[0], None, _dense, True, 0.5, seed, 1, 0.25), Member(ws[1], None, _dense),
               Member(ws[2], None, _dense, True, 2.0, seed, 2, 0.25))
    ups = [torch.randn(3, 5, n, generator=g, dtype=f64) for n in (24, 8, 8)]
    for used in ((0, 1, 2), (0, 2)):
        outs = linears(x, members, tuple(ab), f64)
        sum((outs[i] * ups[i]).sum() for i in used).backward()
        got = [o.detach() for o in outs] + [x.grad.clone()] + [t.grad.clone() for t in ab]
        for t in (x, *ab):
            t.grad = None
        refs = [_reference(x, ab[0], ab[1], ws[0], 0.5, seed, 1, 0.25), x @ ws[1].t(),
                _reference(x, ab[2], ab[3], ws[2], 2.0, seed, 2, 0.25)]
        sum((refs[i] * ups[i]).sum() for i in used).backward()
        want = [r.detach() for r in refs] + [x.grad.clone()] + [t.grad.clone() for t in ab]
        for t in (x, *ab):
            t.grad = None
        for mine, theirs in zip(got, want, strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-10)
    assert float(got[-2].abs().max()) > 0 and float(got[-1].abs().max()) > 0  # not all unused


def _tiny_nf4_lora(tmp_path, lora_dropout=0.1):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=64)).save_pretrained(tmp_path)
    return _nf4_model(tmp_path, torch.bfloat16, lora_dropout, lora_seed=1)


def test_lean_computes_q_k_v_and_gate_up_in_one_step_each_as_the_members_alone(tmp_path, monkeypatch):
    """Real NF4 weights (bitsandbytes' CPU backend), bf16 autocast: with shared-input groups each layer's q/k/v
    and gate/up are one `linears` call each, nothing is held after the layer, and loss and gradients are the
    ungrouped run's (the input gradient's sum is accumulated in another order: bf16 rounding apart)."""
    pytest.importorskip("bitsandbytes")
    from envdoctor.training import lean

    ids = torch.randint(4, 90, (2, 16), generator=torch.Generator().manual_seed(3))

    model = _tiny_nf4_lora(tmp_path)
    ok, note = lean.apply_lean(model, fused=True, shared=False)
    assert ok and "shared-input" not in note
    ref_loss, ref = _lean_step(model, ids)
    lean.remove_lean(model)
    ok, note = lean.apply_lean(model, fused=True)
    assert ok and "4 shared-input groups" in note, note
    calls: list[int] = []
    real = lean.linears
    monkeypatch.setattr(lean, "linears", lambda x, members, *a: calls.append(len(members)) or real(x, members, *a))
    loss, got = _lean_step(model, ids)
    assert sorted(calls) == [1, 1, 2, 2, 3, 3]  # per layer: o_proj alone, gate/up, q/k/v (down_proj: _NF4Linear)
    groups = {id(m.forward.envdoctor_group): m.forward.envdoctor_group for m in model.modules()
              if getattr(m.__dict__.get("forward"), "envdoctor_group", None) is not None}
    assert len(groups) == 4 and all(g.key is None and not g.pending for g in groups.values())
    assert abs(loss - ref_loss) <= 1e-3 * abs(ref_loss)
    assert got.keys() == ref.keys() and len(got) == 16
    for n in ref:
        assert float((got[n] - ref[n]).norm() / ref[n].norm()) < 0.02, n


def test_a_sibling_called_on_another_input_computes_its_own_output(tmp_path):
    """The group hands out a computed output only for the very input it was computed from: k on another tensor
    than q's is k of that tensor, as k alone computes it."""
    pytest.importorskip("bitsandbytes")
    from envdoctor.training.lean import apply_lean, remove_lean

    model = _tiny_nf4_lora(tmp_path, lora_dropout=0.0)
    attn = model.base_model.model.model.layers[0].self_attn
    g = torch.Generator().manual_seed(4)
    x1, x2 = torch.randn(1, 6, 64, generator=g), torch.randn(1, 6, 64, generator=g)
    apply_lean(model, fused=True, shared=False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = attn.k_proj(x2)
    remove_lean(model)
    assert "shared-input groups" in apply_lean(model, fused=True).note
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        attn.q_proj(x1)
        got = attn.k_proj(x2)
        again = attn.k_proj(x2)  # taken once: the second call computes afresh
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(again, want, rtol=0, atol=0)


def test_the_fused_step_saves_x_and_z_not_the_dropped_copy_or_the_weight():
    x = torch.randn(64, 32, requires_grad=True)
    a = torch.randn(4, 32, requires_grad=True)
    b = torch.randn(16, 4, requires_grad=True)
    w = torch.randn(16, 32)
    saved: list[tuple[int, ...]] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        lora_nf4(x, a, b, w, None, _dense, 1.0, torch.zeros((), dtype=torch.int64), 0, 0.1, torch.float32)
    assert sorted(saved) == sorted([(64, 32), (64, 4), (4, 32), (16, 4)])  # x, z, A, B: nothing (64, 32) twice


def test_plain_members_save_no_activation_and_adapters_save_the_shared_input_once():
    """gate/up (no adapters) need only their frozen weights for the input's gradient: nothing saved (their input
    is kept by nothing else; saving it cost 2 GiB at batch 4 on the H200). q/k/v with adapters: x once, z, A, B."""
    x = torch.randn(64, 32, requires_grad=True)
    w1, w2 = torch.randn(16, 32), torch.randn(8, 32)
    saved: list[tuple[int, ...]] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        outs = linears(x, (Member(w1, None, _dense), Member(w2, None, _dense)), (), torch.float32)
    assert saved == []
    (outs[0].sum() + outs[1].sum()).backward()
    torch.testing.assert_close(x.grad, (torch.ones(64, 16) @ w1 + torch.ones(64, 8) @ w2))
    a1, b1, a2, b2 = (torch.randn(*s, requires_grad=True) for s in ((4, 32), (16, 4), (4, 32), (8, 4)))
    seed = torch.zeros((), dtype=torch.int64)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        linears(x, (Member(w1, None, _dense, True, 1.0, seed, 0, 0.1), Member(w2, None, _dense, True, 1.0, seed, 1, 0.1)),
                (a1, b1, a2, b2), torch.float32)
    assert sorted(saved) == sorted([(64, 32), (64, 4), (4, 32), (16, 4), (64, 4), (4, 32), (8, 4)])


def test_torch_ops_add_the_masked_product_in_place():
    g = torch.Generator().manual_seed(1)
    dx, gz, a = torch.randn(10, 12, generator=g), torch.randn(10, 3, generator=g), torch.randn(3, 12, generator=g)
    seed = torch.full((), 2, dtype=torch.int64)
    want = dx + hash_dropout(gz @ a, seed, 7, 0.5)
    TorchOps().add_drop_gz_a(dx, gz, a, seed, 7, 0.5)
    torch.testing.assert_close(dx, want)
    assert int((hash_dropout(torch.ones(10, 12), seed, 7, 0.5) == 0).sum()) > 20  # about half dropped


def _nf4_model(model_dir, dtype, lora_dropout=0.2, lora_seed=0):
    """The checkpoint in NF4 on the CPU with r-4 adapters on q/k/v/o (random A and B), dropout counter-based."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from envdoctor.training.dropout import DropoutSeeds, use_hash_dropout

    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=q, dtype=dtype, device_map={"": "cpu"})
    for prm in model.parameters():
        prm.requires_grad_(False)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=lora_dropout, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(lora_seed)
    for name, prm in model.named_parameters():
        if "lora_" in name:
            prm.data = (torch.randn(prm.shape, generator=gen) * 0.2).float()
    assert use_hash_dropout(model, DropoutSeeds(torch.device("cpu"), start=3)).ok
    return model.train()


def _lean_step(model, ids, autocast: bool = True):
    """One forward + backward on the CPU (bf16 autocast unless `autocast` is False): the loss and every gradient
    (fp64 copies)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.double().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def test_lean_fused_lora_is_as_close_to_fp32_as_the_unfused_bf16_path(tiny, tmp_path):
    """Real NF4 weights (bitsandbytes' CPU backend), counter-based dropout (the same masks in every run), bf16
    autocast: the fused step and the separate base + DropLinear path are both bf16 approximations of the fp32
    step, and the fused one is no further from it than the unfused one."""
    pytest.importorskip("bitsandbytes")
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    from envdoctor.training.lean import apply_lean, remove_lean

    torch.manual_seed(0)  # the tiny model's own weights: the session fixture's depend on the tests before it
    LlamaForCausalLM(AutoConfig.from_pretrained(tiny["model"])).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny["model"]).save_pretrained(tmp_path)
    ids = torch.randint(4, 40, (2, 12), generator=torch.Generator().manual_seed(3))
    fp32 = _nf4_model(tmp_path, torch.float32)
    assert apply_lean(fp32, fused=True).ok  # no autocast: the unfused lean path, in fp32
    true_loss, truth = _lean_step(fp32, ids, autocast=False)
    model = _nf4_model(tmp_path, torch.bfloat16)
    ok, note = apply_lean(model, fused=False)
    assert ok and "fused" not in note
    ref_loss, ref = _lean_step(model, ids, autocast=True)
    remove_lean(model)
    ok, note = apply_lean(model, fused=True)
    assert ok and "LoRA fused with its base" in note, note
    loss, got = _lean_step(model, ids, autocast=True)
    assert len(got) == len(ref) == len(truth) == 16

    def err(grads):
        return max(float((grads[n] - truth[n]).norm() / truth[n].norm()) for n in truth)

    assert abs(loss - true_loss) <= 2 * abs(ref_loss - true_loss) + 1e-3 * abs(true_loss)
    # seed 0: fused 3.3 % vs unfused 3.4 %; over six seeds the ratio was 0.8-1.27, the loss errors alike
    assert err(got) <= 1.5 * err(ref) + 0.01
    assert err(ref) < 0.5  # the comparison means something: both follow fp32


def test_the_first_adapter_updates_reach_the_loss_as_in_fp32_not_lost_to_double_rounding(tmp_path):
    """B starts at zero, so after one step the branch s * B(A(x)) is a small fraction of a bf16 step of the base
    output. The unfused path (peft's arithmetic: the base output rounded to bf16, then the branch added and rounded
    again) loses most of it; the fused step rounds base + branch once, and its loss moves as the fp32 run's does.
    This is why on the H200 (issue 17, 2026-12-02) the fused trainer's loss fell faster than TRL's in the first
    steps (12.627 vs 12.566 at step 2) and the gap closed as B grew (0.6-0.7 % at step 20)."""
    pytest.importorskip("bitsandbytes")
    from transformers import LlamaConfig, LlamaForCausalLM

    from envdoctor.training.lean import apply_lean

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=128)).save_pretrained(tmp_path)
    ids = torch.randint(4, 128, (4, 64), generator=torch.Generator().manual_seed(1))

    def progress(dtype, fused):
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=dtype)
        m = AutoModelForCausalLM.from_pretrained(tmp_path, quantization_config=q, dtype=dtype,
                                                 device_map={"": "cpu"})
        for p in m.parameters():
            p.requires_grad_(False)
        torch.manual_seed(5)  # the same A in every run; B is peft's zeros
        m = get_peft_model(m, LoraConfig(r=16, lora_alpha=4, lora_dropout=0.0, task_type="CAUSAL_LM",
                                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])).train()
        if fused is not None:
            apply_lean(m, fused=fused)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-4)
        losses = []
        for _ in range(3):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                loss = m(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        return [losses[0] - x for x in losses[1:]]  # how far the loss moved since the first step

    fp32, unfused, fused = progress(torch.float32, None), progress(torch.bfloat16, False), progress(torch.bfloat16, True)
    assert fp32[0] > 0 and fp32[1] > fp32[0]  # it learns
    # measured here: fp32 0.00125 / 0.00256, fused 0.00142 / 0.00259, unfused 0.00052 / 0.00137
    assert all(abs(f - r) <= 0.2 * r for f, r in zip(fused, fp32, strict=True))
    assert abs(unfused[0] - fp32[0]) > 3 * abs(fused[0] - fp32[0])


def test_qwen2s_biased_q_k_v_go_through_one_fused_step_as_peft_computes_them(tmp_path, make_tok):
    """Qwen2's q/k/v carry a frozen bias: they join the fused shared-input step (the bias added to each output),
    and loss and gradients under bf16 autocast are bitsandbytes + peft's, bf16 rounding apart."""
    pytest.importorskip("bitsandbytes")
    from envdoctor._certify.probes.family import tiny_model
    from envdoctor.training import lean

    torch.manual_seed(0)
    m = tiny_model("qwen2", vocab_size=96, hidden_size=64, intermediate_size=128)
    for name, b in m.named_parameters():
        if name.endswith("proj.bias"):  # transformers starts them at zero: make them matter
            b.data.normal_(0.0, 0.5)
    m.save_pretrained(tmp_path)
    model = _nf4_model(tmp_path, torch.bfloat16, lora_dropout=0.0)
    ids = torch.randint(4, 90, (2, 16), generator=torch.Generator().manual_seed(3))

    ref_loss, ref = _lean_step(model, ids)
    ok, note = lean.apply_lean(model, fused=True)
    assert ok and "8 LoRA + 6 plain NF4 linears" in note and "4 shared-input groups" in note, note
    loss, got = _lean_step(model, ids)
    assert abs(loss - ref_loss) <= 5e-3 * abs(ref_loss)
    assert got.keys() == ref.keys() and len(got) == 16
    for n in ref:
        assert float((got[n] - ref[n]).norm() / ref[n].norm()) < 0.03, n
