"""`envdoctor train qlora` (the CLI users run) against TRL's SFTTrainer, side by side in one call (GPU only).

    python benchmarks/bench_vs_trl.py [--reps 3] [--cases seed,b4] [--deadline-s 540]

Builds the Llama-3.1-8B-shaped random checkpoint and the data the reference scripts use (`.ref/qlora_baseline.py
make`, `.ref/mkdata.py`), then alternates, each run its own process: TRL 1.16 SFTTrainer (`.ref/trl_baseline.py`,
its own defaults; the batch-4 case is the same script with batch 4 and no checkpointing) and `envdoctor train
qlora` with the same model, data, LoRA (r 64, alpha 16, dropout 0.1 on q/k/v/o), sequence 2048, learning rate
and optimizer (paged AdamW 32-bit). Both report steady-state tokens/s (TRL: steps 3..14 from its callback's
clock; envdoctor: its own JSON, first step excluded) and torch's max_memory_allocated. `--parity` runs both with
dropout 0 on identical rows and compares the per-step losses. Every result is a `RESULT {json}` line on stdout
and in $OUT/vs_trl.jsonl; the table is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_trainer  # noqa: E402  (its RESULT line and $OUT log)

TMP = tempfile.gettempdir()
MODEL = os.path.join(TMP, "llama8b")
DATA = os.path.join(TMP, "data.jsonl")
STEPS = 14
# the settings the issue names; everything else stays each tool's default
CASES = {
    "seed": {"batch": 1, "ckpt": True, "ours": ["--batch-size", "1", "--effective-batch", "1",
                                                 "--gradient-checkpointing"]},
    "b4": {"batch": 4, "ckpt": False, "ours": ["--batch-size", "4", "--effective-batch", "4",
                                                "--no-gradient-checkpointing"]},
}
LORA = ["--lora-r", "64", "--lora-alpha", "16", "--lora-dropout", "0.1", "--lora-targets",
        "q_proj,k_proj,v_proj,o_proj", "--lr", "2e-4", "--seq-len", "2048", "--warmup-steps", "0",
        "--save-steps", "0", "--max-grad-norm", "1.0"]


def ref(name: str) -> Path:
    for p in (ROOT / ".ref" / name, ROOT.parent / "shared" / "reference" / name):
        if p.is_file():
            return p
    raise SystemExit(f"the reference script {name} is missing (copy ../shared/reference into .ref/)")


def emit(rec: dict) -> None:
    bench_trainer.emit(rec, "vs_trl.jsonl")


def trl_script(case: str, dropout: float = 0.1, steps: int = STEPS, data: str = DATA) -> Path:
    """The reference TRL script, with only the case's batch/checkpointing (and for parity dropout) changed."""
    src = ref("trl_baseline.py").read_text(encoding="utf-8")
    subs = []
    if CASES[case]["batch"] != 1:
        subs.append(("per_device_train_batch_size=1", f"per_device_train_batch_size={CASES[case]['batch']}"))
    if not CASES[case]["ckpt"]:
        subs.append(("gradient_checkpointing=True", "gradient_checkpointing=False"))
    if dropout != 0.1:
        subs.append(("lora_dropout=0.1", f"lora_dropout={dropout}"))
    if steps != STEPS:
        subs.append(("max_steps=14", f"max_steps={steps}"))
        subs.append(("print(\"RESULT \"", "print(\"LOSSES \" + json.dumps([h['loss'] for h in tr.state.log_history "
                     "if 'loss' in h]), flush=True)\nprint(\"RESULT \""))
    if data != DATA:
        subs.append(('os.path.join(TMP, "data.jsonl")', repr(data)))
    subs.append(("n * 2048 / dt", f"n * 2048 * {CASES[case]['batch']} / dt"))
    for old, new in subs:
        if old not in src:
            raise SystemExit(f"trl_baseline.py changed: {old!r} not found")
        src = src.replace(old, new)
    out = Path(TMP) / f"trl_{case}_{dropout}_{steps}.py"
    out.write_text(src, encoding="utf-8")
    return out


def run_trl(case: str, **kw: object) -> dict:
    t = time.time()
    p = subprocess.run([sys.executable, str(trl_script(case, **kw))], capture_output=True, text=True)  # type: ignore[arg-type]
    rec: dict = {"tool": "trl", "case": case, "rc": p.returncode, "wall_s": round(time.time() - t, 1)}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            rec.update(json.loads(line[7:]))
        if line.startswith("LOSSES "):
            rec["losses"] = json.loads(line[7:])
    if p.returncode:
        rec["stderr"] = p.stderr[-2000:]
    return rec


def run_ours(case: str, data: str = DATA, steps: int = STEPS, graphs: bool = True, extra: tuple[str, ...] = ()) -> dict:
    env = dict(os.environ, ENVDOCTOR_SKIP_GUARD="1", ENVDOCTOR_GRAPHS="1" if graphs else "0",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    out = os.path.join(TMP, f"ed-{case}-{time.time_ns()}")
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "envdoctor", "train", "qlora", "--model", MODEL, "--dataset", data,
                        "--output", out, "--max-steps", str(steps), *LORA, *CASES[case]["ours"], *extra],
                       capture_output=True, text=True, env=env)
    rec: dict = {"tool": "envdoctor" if graphs else "envdoctor-eager", "case": case, "rc": p.returncode,
                 "wall_s": round(time.time() - t, 1)}
    if p.returncode == 0:
        res = json.loads(p.stdout.strip().splitlines()[-1])
        rec.update(tokens_per_s=round(res["tokens_per_s"]), peak_alloc_gib=res["peak_gib"],
                   final_loss=res.get("final_loss"), stalls=res.get("stalls_s"))
        log = Path(out) / "metrics.jsonl"
        if log.is_file():
            rec["losses"] = [json.loads(x)["loss"] for x in log.read_text().splitlines() if '"loss"' in x
                             and "eval" not in x]
    rec["notes"] = [ln.strip() for ln in p.stderr.splitlines()
                    if re.search(r"graph|lean|checkpoint|kernels|plan|fused|varlen", ln)][:14]
    if p.returncode:
        rec["stderr"] = p.stderr[-2500:]
    return rec


PARITY = os.path.join(TMP, "parity.jsonl")
PARITY_STEPS = 20


def parity() -> list[dict]:
    """Both trainers, dropout 0, on 64 copies of one row that both tokenise to exactly 2048 tokens (2047 words +
    EOS: one sequence per row, positions 0..2047, no packing across rows), so every batch is the same in both."""
    text = " ".join(f"w{i % 500}" for i in range(2047))
    with open(PARITY, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": text}) + "\n" for _ in range(64))
    trl = run_trl("seed", dropout=0.0, steps=PARITY_STEPS, data=PARITY)
    ours = run_ours("seed", data=PARITY, steps=PARITY_STEPS, extra=("--lora-dropout", "0"))
    rec: dict = {"kind": "parity", "trl_losses": trl.get("losses"), "envdoctor_losses": ours.get("losses"),
                 "trl_rc": trl["rc"], "envdoctor_rc": ours["rc"]}
    a, b = trl.get("losses") or [], ours.get("losses") or []
    if a and b:
        rec["first_rel"] = abs(a[0] - b[0]) / abs(a[0])
        rec["last_rel"] = abs(a[-1] - b[-1]) / abs(a[-1])
        rec["max_rel"] = max(abs(x - y) / abs(x) for x, y in zip(a, b, strict=False))
    if trl["rc"] or ours["rc"]:
        rec["stderr"] = (trl.get("stderr") or "") + (ours.get("stderr") or "")
    return [rec]


def make() -> None:
    subprocess.run([sys.executable, str(ref("qlora_baseline.py")), "make"], check=True)
    if not os.path.exists(DATA) or not os.path.exists(os.path.join(MODEL, "tokenizer.json")):
        subprocess.run([sys.executable, str(ref("mkdata.py")), MODEL, DATA], check=True)


def table(rows: list[dict]) -> str:
    out = ["| case | tool | tok/s (runs) | median | peak allocated GiB |", "|---|---|---|---|---|"]
    keys = sorted({(r["case"], r["tool"]) for r in rows})
    med: dict = {}
    for case, tool in keys:
        rs = [r for r in rows if r["case"] == case and r["tool"] == tool and r.get("tokens_per_s")]
        if not rs:
            out.append(f"| {case} | {tool} | failed | | |")
            continue
        tps = [r["tokens_per_s"] for r in rs]
        med[(case, tool)] = statistics.median(tps)
        out.append(f"| {case} | {tool} | {' / '.join(f'{x:,}' for x in tps)} | {med[(case, tool)]:,.0f} | "
                   f"{max(r['peak_alloc_gib'] for r in rs):.2f} |")
    for case in sorted({c for c, _ in keys}):
        if (case, "trl") in med and (case, "envdoctor") in med:
            out.append(f"\n{case}: envdoctor / TRL = {med[(case, 'envdoctor')] / med[(case, 'trl')]:.2f}x")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cases", default="seed,b4")
    ap.add_argument("--tools", default="trl,envdoctor", help="trl, envdoctor, envdoctor-eager")
    ap.add_argument("--deadline-s", type=float, default=540.0)
    ap.add_argument("--parity", action="store_true", help="first: the loss parity run (dropout 0, same rows)")
    a = ap.parse_args()
    t0 = time.time()
    make()
    if a.parity:
        for rec in parity():
            emit(rec)
    rows: list[dict] = []
    for rep in range(a.reps):
        for case in a.cases.split(","):
            for tool in a.tools.split(","):
                if time.time() - t0 > a.deadline_s:
                    print(f"deadline: stopped before rep {rep + 1} {case} {tool}", flush=True)
                    print(table(rows), flush=True)
                    return 0
                rec = run_trl(case) if tool == "trl" else run_ours(case, graphs=tool == "envdoctor")
                rec["rep"] = rep + 1
                emit(rec)
                rows.append(rec)
    print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
