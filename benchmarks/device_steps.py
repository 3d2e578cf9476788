"""Named benchmark steps run one after another against a deadline, for one call on the GPU machine (GPU only).

    python benchmarks/device_steps.py DEADLINE_S "make;trl,b4;ours,b4;env,ENVDOCTOR_FUSED_LORA=0;ours,b4;parity"

A device call has a fixed time limit and a session has 30 minutes of device time: this runs as many of the steps
as fit, starting none after DEADLINE_S seconds, and prints one line per step (the records also go to $OUT as
bench_vs_trl writes them). Steps:
- `make`: the 8B random checkpoint, tokenizer and data (`.ref/qlora_baseline.py make`, `.ref/mkdata.py`);
- `trl,CASE` / `ours,CASE[,ARG...]` / `eager,CASE`: one run of bench_vs_trl's case (seed, b4), extra CLI args after;
- `parity`: bench_vs_trl's loss parity (TRL and envdoctor); `pours`: envdoctor alone on the parity rows;
- `prof,CASE[,ARG...]`: benchmarks/profile_cli.py on the case; `parts`: benchmarks/bench_lora_parts.py;
- `env,NAME=VALUE` (or `NAME=` to unset): for the steps after it, e.g. the A/B switches ENVDOCTOR_FUSED_LORA=0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_vs_trl as vs  # noqa: E402

T0 = time.time()


def say(text: str) -> None:
    print(f"[{time.time() - T0:6.0f}s] {text}", flush=True)


def logged(cmd: list[str], name: str) -> None:
    """`cmd` with its output in $OUT/<name>.log (or the temp folder)."""
    t = time.time()
    with open(os.path.join(os.environ.get("OUT", vs.TMP), name + ".log"), "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    say(f"{name}: rc {rc} in {time.time() - t:.0f}s")


def step(name: str, args: list[str]) -> None:
    if name == "make":
        vs.make()
        say("make done")
    elif name in ("trl", "ours", "eager"):
        rec = vs.run_trl(args[0]) if name == "trl" else vs.run_ours(args[0], graphs=name == "ours",
                                                                      extra=tuple(args[1:]))
        vs.emit(rec)
        say(f"{name} {args}: {rec.get('tokens_per_s')} tok/s, {rec.get('peak_alloc_gib')} GiB, rc {rec['rc']}")
    elif name == "parity":
        for rec in vs.parity():
            vs.emit(rec)
            say(f"parity: first {rec.get('first_rel')}, last {rec.get('last_rel')}, max {rec.get('max_rel')}")
    elif name == "pours":
        rec = vs.run_ours("seed", data=vs.PARITY, steps=vs.PARITY_STEPS, extra=("--lora-dropout", "0"))
        rec["env"] = {k: v for k, v in os.environ.items() if k.startswith("ENVDOCTOR_")}
        vs.emit(rec)
        say(f"pours {rec['env']}: {rec.get('losses')}")
    elif name == "prof":
        case = args[0]
        logged([sys.executable, str(ROOT / "benchmarks" / "profile_cli.py"), "--label", "".join(args), "--",
                "--model", vs.MODEL, "--dataset", vs.DATA, "--output", os.path.join(vs.TMP, f"prof-{time.time_ns()}"),
                *vs.LORA, *vs.CASES[case]["ours"], *args[1:]], "prof_" + "_".join(args).replace("-", ""))
    elif name == "parts":
        logged([sys.executable, str(ROOT / "benchmarks" / "bench_lora_parts.py")], "parts")
    elif name == "env":
        key, _, value = args[0].partition("=")
        if value:
            os.environ[key] = value
        else:
            os.environ.pop(key, None)
        say(f"env {key}={value}")
    else:
        raise SystemExit(f"unknown step {name!r} (see --help)")


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    deadline = float(sys.argv[1])
    for item in sys.argv[2].split(";"):
        if time.time() - T0 > deadline:
            say(f"deadline: not started: {item}")
            break
        name, *args = item.split(",")
        step(name, args)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
