"""What is alive at the peak of GPU memory, grouped by the code that allocated it (GPU only).

    python benchmarks/memory_peak.py --label ours -- -m envdoctor train qlora --model ... (a module, as python -m)
    python benchmarks/memory_peak.py --label trl -- /tmp/trl_seed.py                       (a script)

Runs the target in this process with PyTorch's allocator history on (`torch.cuda.memory._record_memory_history`,
Python stacks), replays the trace's allocations and frees to find the moment the most bytes were allocated, and
prints the live blocks then, grouped by the innermost frame outside torch, with the stack of the allocation that
reached the peak. Written to $OUT/memory_<label>.txt as well. The history slows the run: time nothing with it.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections import defaultdict
from pathlib import Path

GIB = 2**30


def _where(frames: list[dict]) -> str:
    for f in frames:  # innermost first
        name = f.get("filename", "")
        if "/torch/" not in name and "<" not in name:
            short = "/".join(Path(name).parts[-2:])
            return f"{short}:{f.get('line')} {f.get('name')}"
    return "(no Python frame outside torch: the autograd engine or a C++ op)"


def _stack(frames: list[dict], n: int = 14) -> list[str]:
    return [f"    {'/'.join(Path(f.get('filename', '')).parts[-3:])}:{f.get('line')} {f.get('name')}" for f in frames[:n]]


def analyse(snapshot: dict, device: int = 0) -> str:
    events = snapshot["device_traces"][device]
    live: dict[int, tuple[int, list[dict]]] = {}
    cur = peak = 0
    at_peak: dict[int, tuple[int, list[dict]]] = {}
    peak_event: dict = {}
    for i, ev in enumerate(events):
        action = ev.get("action")
        if action == "alloc":
            live[ev["addr"]] = (ev["size"], ev.get("frames", []))
            cur += ev["size"]
            if cur > peak:
                peak, peak_event, at_peak = cur, dict(ev, index=i), dict(live)
        elif action in ("free_requested", "free_completed") and ev["addr"] in live:
            cur -= live.pop(ev["addr"])[0]
    groups: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for size, frames in at_peak.values():
        groups[_where(frames)] += size
        counts[_where(frames)] += 1
    lines = [f"peak {peak / GIB:.3f} GiB over {len(events):,} events (event {peak_event.get('index')}), "
             f"{len(at_peak):,} live blocks", "", "GiB      blocks  allocated at"]
    for key, size in sorted(groups.items(), key=lambda kv: -kv[1])[:40]:
        lines.append(f"{size / GIB:7.3f}  {counts[key]:6d}  {key}")
    lines += ["", f"the allocation that reached the peak ({peak_event.get('size', 0) / 2**20:.1f} MiB):"]
    lines += _stack(peak_event.get("frames", []))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--max-entries", type=int, default=4_000_000)
    ap.add_argument("target", nargs=argparse.REMAINDER, help="-- -m module args... | -- script.py args...")
    a = ap.parse_args()
    target = a.target[1:] if a.target[:1] == ["--"] else a.target
    if not target:
        ap.error("no target after --")
    import torch

    torch.cuda.memory._record_memory_history(max_entries=a.max_entries, stacks="python")
    try:
        if target[0] == "-m":
            sys.argv = [target[1], *target[2:]]
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(target)
            runpy.run_path(target[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            print(f"target exited {e.code}", file=sys.stderr)
    snap = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    text = f"# {a.label}: max_memory_allocated {torch.cuda.max_memory_allocated() / GIB:.3f} GiB\n" + analyse(snap)
    print(text, flush=True)
    out = os.environ.get("OUT")
    if out:
        Path(out, f"memory_{a.label}.txt").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
