"""One training run end to end: gate (certification), plan (memory), then the heavy imports, load and train."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._env.gpu import GpuInfo, declared, detect
from .._render.train import render_plan
from ..errors import ConfigError, DoesNotFitError
from . import dist
from .config import TrainConfig
from .kinds import Device, Outcome
from .loop import NullReporter, Reporter, TrainResult
from .memory import ModelShape, RunShape, shape_from_config
from .plan import Plan, choose_dtype, graphs_allowed, make_plan, varlen_gaps, varlen_planned


def gate(cfg: TrainConfig) -> Any:
    """The certification guard for the run's matrix and this GPU; raises NotCertifiedError, imports nothing heavy."""
    from .._certify.guard import guard

    return guard(matrix=cfg.matrix, tier=2, device=None)


def gpu_for(cfg: TrainConfig) -> GpuInfo:
    """The declared GPU (--gpu) or the detected one."""
    return declared(cfg.gpu) if cfg.gpu else detect()


def model_config(ref: str) -> dict[str, Any]:
    """The model's config.json: read from the folder, else through transformers (hub id, cache)."""
    p = Path(ref)
    if p.is_dir():
        f = p / "config.json"
        try:
            return dict(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise ConfigError(f"model {ref}: no readable config.json ({e})") from e
    try:
        from transformers import AutoConfig

        return dict(AutoConfig.from_pretrained(ref).to_dict())
    except Exception as e:  # OSError (not found, offline), ValueError (unknown model type)
        raise ConfigError(f"model {ref!r}: neither a local folder nor a loadable hub id ({e})") from e


def fast_path_probe(device: Device) -> Outcome:
    """Whether the fused kernels can run here: liger-kernel (and its triton) import, on a CUDA device."""
    if device != "cuda":
        return Outcome(False, "fused kernels need CUDA")
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception as e:
        return Outcome(False, f"liger-kernel is not importable ({type(e).__name__}: {e}); pip install 'envdoctor[fast]'")
    return Outcome(True, "liger-kernel imports")


def loss_on(cfg: TrainConfig) -> str:
    """What carries loss, for the plan (the data's own line follows once it is tokenised)."""
    if cfg.train_on_prompt:
        return "every token (--train-on-prompt)"
    return ("responses only: instruction/prompt rows train on the output, messages on assistant turns, text rows on "
            "everything; the EOS ending each response is trained")


def plan_run(cfg: TrainConfig, shape: ModelShape, gpu: GpuInfo, cfg_dict: dict[str, Any] | None = None,
             world_size: int = 1) -> Plan:
    """The run's plan: the config's fixed choices, the rest chosen to fit the GPU (each GPU, under DDP)."""
    cuda = gpu.available and gpu.kind == "cuda"
    text = (cfg_dict or {}).get("text_config") or cfg_dict or {}
    softcap = bool(text.get("final_logit_softcapping"))
    fast = cfg.fast != "off" and not softcap
    notes = []
    if softcap and cfg.fast != "off":
        notes.append("fused loss off: the model soft-caps its logits")
    kernels_ok, why = fast_path_probe("cuda" if cuda else "cpu")
    # CUDA graphs make LoRA dropout counter-based, which saves less (make_plan adds the device conditions)
    counter = cfg.method == "qlora" and graphs_allowed() and importlib.util.find_spec("triton") is not None
    # packed rows on the varlen path (levers_for) reach the attention without a mask: no k/v repeated to every head
    # (the H200's batch-4 Llama-3.1-8B run: 44.55 GiB measured, 47.52 estimated with the mask's k/v, 44.52 without)
    mask = cfg.packing
    if cfg.packing and varlen_planned("cuda" if cuda else "cpu"):
        gaps = varlen_gaps(cfg_dict, shape.head_dim, choose_dtype(gpu, cfg.dtype))
        mask = bool(gaps)
        if gaps:
            notes.append(f"packed attention estimated with SDPA's mask: varlen leaves {', '.join(gaps)} to SDPA")
    run = RunShape(cfg.method, cfg.batch_size or 1, cfg.seq_len, lora_r=cfg.lora_r,
                   lora_targets=shape.targets(cfg.lora_targets), lora_dropout=cfg.lora_dropout, galore_rank=cfg.galore_rank,
                   galore_targets=tuple(cfg.galore_targets), packed=mask, counter_dropout=counter)
    if fast and cuda and not kernels_ok:
        if cfg.fast == "on":
            raise ConfigError(f"fast = on, but {why}")
        notes.append(f"fused kernels off: {why}")
    plan = make_plan(shape, gpu, run, effective_batch=cfg.effective_batch, dtype=cfg.dtype,
                     fixed_batch=cfg.batch_size, fixed_checkpointing=cfg.gradient_checkpointing, fast=fast,
                     kernels=fast and kernels_ok, max_memory_gib=cfg.max_memory_gib, world_size=world_size,
                     parallel=cfg.parallel)
    return replace(plan, notes=plan.notes + tuple(notes), loss_on=loss_on(cfg))


def train(cfg: TrainConfig, reporter: Reporter | None = None, *, skip_gate: bool = False) -> TrainResult:
    """Gate, plan, load, train; nothing is written before the gate passes. Under torchrun, one rank of several."""
    world = dist.world_from_env()
    rep = (reporter or NullReporter()) if world.main else NullReporter()  # logs and the plan from rank 0 only
    if not skip_gate:
        gate(cfg)
    for name, path in (("dataset", cfg.dataset), ("eval_dataset", cfg.eval_dataset)):
        if path and not Path(path).is_file():
            raise ConfigError(f"{name} {path}: no such file")
    if cfg.eval_dataset and cfg.eval_split:
        raise ConfigError("eval_dataset and eval_split both given: use one")
    gpu = gpu_for(cfg)
    cfg_dict = model_config(cfg.model)
    shape = shape_from_config(cfg_dict, name=cfg.model)
    plan = plan_run(cfg, shape, gpu, cfg_dict, world.world_size)
    rep.message(render_plan(plan))
    dist.init(world, plan.device == "cuda")
    try:
        return _execute(cfg, plan, rep, world, shape)
    finally:
        dist.shutdown(world)


def load_data(cfg: TrainConfig, tok: Any, seq: int, rep: Reporter) -> tuple[list[Any], list[Any]]:
    """(train, eval) examples, masked as the config says; the masking's outcome goes to the reporter."""
    from .data import pack, read_jsonl, split_rows
    from .masking import docs_from

    rows = read_jsonl(cfg.dataset)
    rows, held = split_rows(rows, cfg.eval_split, cfg.seed)
    eval_rows = read_jsonl(cfg.eval_dataset) if cfg.eval_dataset else held
    docs, stats = docs_from(rows, tok, cfg.train_on_prompt, cfg.dataset)
    rep.message(f"  data: {stats.describe()}")
    if stats.rows and stats.eos_trained < len(docs):
        rep.message(f"  warning: the EOS is not a target in {len(docs) - stats.eos_trained} rows: a model that never "
                    "learns to emit it does not stop")
    examples = pack(docs, seq, cfg.packing)
    if not examples and stats.rows and not stats.seen_tokens:
        # e.g. transformers 5 builds the model type's own tokenizer class from tokenizer.json whatever
        # tokenizer_config names (https://github.com/huggingface/transformers/pull/44606): a word-level
        # tokenizer.json in a Qwen2 folder becomes a Qwen2Tokenizer that encodes every text to nothing
        raise ConfigError(f"model {cfg.model}: its tokenizer ({type(tok).__name__}) turned all {stats.rows} rows of "
                          f"{cfg.dataset} into no tokens: are the tokenizer files the model's own?")
    if not examples:
        raise ConfigError(f"dataset {cfg.dataset}: no example has a trained token (every row masked?)")
    evals: list[Any] = []
    if eval_rows:
        eval_docs, _ = docs_from(eval_rows, tok, cfg.train_on_prompt, cfg.eval_dataset or cfg.dataset)
        evals = pack(eval_docs, seq, cfg.packing)
        rep.message(f"  eval: {len(eval_rows)} rows, {len(evals)} sequences"
                    + (f" ({cfg.eval_split:.0%} held out of the dataset)" if cfg.eval_split else ""))
    return examples, evals


def levers_for(cfg: TrainConfig, plan: Plan, world: dist.World) -> Any:
    """The fast-path levers for this run (fast.Levers); ENVDOCTOR_GRAPHS=0, ENVDOCTOR_VARLEN=0,
    ENVDOCTOR_FUSED_LORA=0, ENVDOCTOR_RESIDENT=0 and ENVDOCTOR_DEQUANT_BLOCKS=N override them, for A/B
    measurements."""
    from .fast import Levers

    # CUDA graphs: one process, one GPU, bf16 (fp16's loss scaler and DDP's hooks stay eager)
    graphs = (cfg.method == "qlora" and plan.device == "cuda" and plan.dtype == "bf16" and plan.fused_loss
              and world.world_size == 1 and graphs_allowed())
    # packed documents through flash attention's varlen kernel: CUDA only (off the GPU it would be a per-document loop)
    # (plan_run estimates packed runs by the same rule: plan.varlen_planned)
    varlen = varlen_planned(plan.device)
    # short of memory (checkpointing): the MLP's NF4 weights dequantised in 4 row blocks, not whole (-84 MiB at the
    # peak); ENVDOCTOR_DEQUANT_BLOCKS=N sets N
    raw = os.environ.get("ENVDOCTOR_DEQUANT_BLOCKS", "4" if plan.checkpointing else "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"ENVDOCTOR_DEQUANT_BLOCKS={raw!r}: expected a whole number of row blocks >= 1")
    blocks = int(raw)
    fused_lora = os.environ.get("ENVDOCTOR_FUSED_LORA", "1") != "0"
    shared_input = os.environ.get("ENVDOCTOR_SHARED_INPUT", "1") != "0"  # A/B switch of lean's _Siblings
    # the plan has memory to spare (plan.resident_allowed): the NF4 weights dequantised once, not twice a step
    resident = plan.run is not None and plan.run.resident_weights and os.environ.get("ENVDOCTOR_RESIDENT", "1") != "0"
    return Levers(fused_loss=plan.fused_loss, kernels=plan.fused_kernels, keep_bf16=True,
                  checkpoint_layers=plan.checkpoint_layers, lean=plan.fused_loss, graphs=graphs, varlen=varlen,
                  dequant_blocks=blocks, fused_lora=fused_lora, resident=resident,
                  shared_input=shared_input)


def replan(plan: Plan, shape: ModelShape, lost: str, why: str, *, instead: str, advice: str,
           **changes: Any) -> Plan:
    """The plan counted on `lost`, which came out off at load time (`why`): its RunShape with `changes`, estimated
    again, and a note saying so; DoesNotFitError (one line: what is off, why, the new need, `advice`) before any
    step when that no longer fits the budget."""
    from .memory import estimate

    if plan.run is None:
        raise ValueError("replan: the plan has no RunShape")
    why = " ".join(why.split())  # one line, whatever the lever's reason held
    # only the run and its estimate: the plan's own fields stay (_execute may have turned the fused loss off)
    run = replace(plan.run, **changes)
    again = replace(plan, run=run, estimate=estimate(shape, run))
    need = again.planned_bytes
    if plan.budget and need > plan.budget:
        raise DoesNotFitError(f"the plan counted on {lost}, which is off ({why}); {instead} the step needs "
                              f"{need / 2**30:.1f} GiB of the {plan.budget / 2**30:.1f} available: {advice}")
    return replace(again, notes=(*plan.notes, f"memory estimate {again.estimate.gib():.2f} GiB: {lost} is off ({why})"))


def replan_without_counter_dropout(plan: Plan, shape: ModelShape, why: str) -> Plan:
    """The plan counted on counter-based LoRA dropout, and it is off (`why`): the estimate with nn.Dropout's saved
    copies; DoesNotFitError before any step when that no longer fits the budget."""
    return replan(plan, shape, "counter-based LoRA dropout", why, instead="with nn.Dropout",
                  advice="use --gradient-checkpointing, a smaller --batch-size, or --lora-dropout 0",
                  counter_dropout=False)


def replan_without_varlen(plan: Plan, shape: ModelShape, why: str) -> Plan:
    """The plan sent packed documents through varlen attention, and it is off (`why`): the estimate with SDPA's
    block-diagonal mask (k/v repeated to every head); DoesNotFitError before any step when that no longer fits."""
    return replan(plan, shape, "varlen attention for the packed documents", why,
                  instead="with SDPA's mask (k/v repeated to every head)",
                  advice="use --gradient-checkpointing, a smaller --batch-size, or --no-packing", packed=True)


def varlen_lost(cfg: TrainConfig, plan: Plan, levers: Any, model: Any, notes: list[str]) -> str | None:
    """Why the varlen attention the plan counted on is off after prepare (`notes`: its notes), None when the plan
    did not count on it (no packing, not planned, estimated with the mask anyway) or it is on."""
    from .varlen import active

    if not (cfg.packing and levers.varlen and plan.run is not None and not plan.run.packed) or active(model):
        return None
    said = next((n for n in notes if n.startswith("varlen attention")), "")
    return said.removeprefix("varlen attention off: ") or "not applied to the model"


def _execute(cfg: TrainConfig, plan: Plan, rep: Reporter, world: dist.World, shape: ModelShape) -> TrainResult:
    import torch

    from .fast import fused_loss_supported
    from .loop import train_loop
    from .model import add_lora, freeze_base, graph_seeds, load_base, prepare

    torch.manual_seed(cfg.seed)  # the same LoRA initialisation on every rank (DDP also broadcasts rank 0's)
    if plan.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"the plan is for a CUDA GPU ({cfg.gpu or 'detected'}), but torch {torch.__version__} "
                          "sees none here; drop --gpu or install a CUDA build of torch")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(cfg.model)
    except Exception as e:
        raise ConfigError(f"model {cfg.model}: no usable tokenizer ({e})") from e
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    if tok.pad_token_id is not None and tok.pad_token_id == tok.eos_token_id:
        # HF's DataCollatorForLanguageModeling masks every label equal to pad, EOS included, and the model never
        # learns to stop (https://github.com/huggingface/transformers/issues/22794); labels here come from the
        # loss mask, never from the pad id, so the EOS stays a target.
        rep.message("  note: pad token = EOS; padding is masked by position, so the EOS label is kept")
    examples, evals = load_data(cfg, tok, plan.seq, rep)
    levers = levers_for(cfg, plan, world)
    if cfg.method == "qlora":
        # FSDP shards NF4 codes with the other weights only when they are stored in the compute dtype
        # (bnb_4bit_quant_storage; https://huggingface.co/docs/bitsandbytes/main/en/fsdp_qlora)
        model = load_base(cfg.model, quantize=plan.quantize, dtype=plan.dtype if plan.quantize == "nf4" else plan.param_dtype,
                          device=plan.device, device_index=world.local_rank,
                          quant_storage=plan.dtype if plan.parallel == "fsdp" else None)
        freeze_base(model, levers)
        model = add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, list(cfg.lora_targets))
    else:
        model = load_base(cfg.model, quantize="none", dtype=plan.param_dtype, device=plan.device,
                          device_index=world.local_rank)
        model.requires_grad_(True)
    ok, why = fused_loss_supported(model)
    if plan.fused_loss and not ok:
        plan = replace(plan, fused_loss=False)
        rep.message(f"fused loss off: {why}")
    # before prepare: checkpointing may drop the RNG state only once every dropout is counter-based
    seeds, why = graph_seeds(model, replace(levers, fused_loss=plan.fused_loss))
    if why:
        rep.message(why)
    if seeds is None and plan.run is not None and plan.run.counter_dropout:
        plan = replan_without_counter_dropout(plan, shape, why or "CUDA graphs off")
        rep.message(plan.notes[-1])
    notes = prepare(model, checkpointing=plan.checkpointing, checkpoint_layers=plan.checkpoint_layers,
                    levers=replace(levers, graphs=seeds is not None))
    for note in notes:
        rep.message(note)
    lost = varlen_lost(cfg, plan, levers, model, notes)
    if lost is not None:  # e.g. a model whose attention is not sdpa: packed rows get transformers' mask
        plan = replan_without_varlen(plan, shape, lost)
        rep.message(plan.notes[-1])
    return train_loop(cfg, plan, model, tok, examples, rep, evals, world, seeds)
