"""`envdoctor certify`: probe the stack up to a tier on the detected GPU (or the CPU) and write a certificate."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "run the probes in tiers and write a certificate that envdoctor.guard() accepts"
EPILOG = """\
tiers:
  0  the check itself (versions against the matrix)
  1  imports of torch, transformers, peft, trl, bitsandbytes, galore_torch, in a fresh interpreter
  2  smoke tests on the device: CUDA, compute capability in torch's arch list, bf16 matmul, bitsandbytes
     NF4 matmul and 8-bit optimizer step, LlamaConfig with the Llama-3.1 rope dict, training keywords
  3  two QLoRA steps on a tiny random model of the matrix's family (LoRA in fp32 with --device cpu)

examples:
  envdoctor certify --tier 3                   certify for the detected GPU, up to the tiny training run
  envdoctor certify --tier 3 --device cpu      what a machine without a GPU can certify
  envdoctor certify --tier 3 --probe tiny-galore   also run a probe the matrix does not name
  envdoctor certify --status                   is there a valid certificate for this environment?
  envdoctor certify --status --verify-files    ... and are the certified packages' files as installed?
  envdoctor certify --format json | jq .probes  the result for machines (with --status too)
  envdoctor certify --list-probes              every registered probe, built-in and from plugins

Each probe runs in its own subprocess with a timeout; GPU probes report "skipped: no GPU" without one.
A certificate needs every check rule to pass; a CPU certificate (--device cpu) needs a matrix that
declares a CPU workload (no [gpu.cuda] rule, or required = false). Certificates of each tier coexist.
Exit status: 0 certified (or --status valid), 1 not certified.
"""


def register(sub: Any) -> None:
    p = sub.add_parser("certify", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--matrix", "-m", default="llama31", help="matrix reference: name, name@version or path (default: llama31)")
    p.add_argument("--tier", "-t", type=int, default=2, choices=range(0, 4), metavar="N", help="highest tier to run, 0-3 (default: 2)")
    p.add_argument("--device", choices=("cuda", "cpu"), default=None, help="device to certify (default: the detected one)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="time limit of each probe (default: the probe's own)")
    p.add_argument("--probe", action="append", default=[], metavar="NAME",
                   help="also run this registered probe at its default tier (repeatable), e.g. tiny-galore")
    p.add_argument("--keep-going", action="store_true", help="run every tier even when a lower one failed")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.add_argument("--verbose", "-v", action="store_true", help="show the probes' output tails")
    p.add_argument("--status", action="store_true", help="only say whether a valid certificate exists (no probes)")
    p.add_argument("--verify-files", action="store_true",
                   help="also check the matrix's installed packages' files against their RECORD hashes (in-place "
                        "edits; with --status too)")
    p.add_argument("--list-probes", action="store_true", help="list the registered probes and exit")
    p.set_defaults(func=run)


def _list() -> int:
    from envdoctor._certify import registry

    specs = sorted(registry.all_probes().values(), key=lambda s: (s.tier, s.name))
    width = max(len(s.name) for s in specs)
    for s in specs:
        print(f"tier {s.tier}  {s.name.ljust(width)}  gpu={s.gpu:<8}  {s.target}\n          {s.description}")
    for err in registry.load_errors:
        print(f"envdoctor: warning: {err}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_probes:
        return _list()
    from envdoctor._render.certify import render_json, render_status, render_status_json, render_text

    json_out = args.format == "json"
    from envdoctor._fastpath import journal_may_exist

    notice = None
    if journal_may_exist(sys.executable):  # a few stats; the fix machinery loads only when a journal is there
        from envdoctor._fix.recover import interrupted_notice

        notice = interrupted_notice(sys.executable)
    if notice:
        print(f"envdoctor: warning: {notice}", file=sys.stderr)
        if not args.status:  # a certificate of a half-changed environment would vouch for a state no one chose
            print("envdoctor: certify does not certify an environment an interrupted fix left half-changed",
                  file=sys.stderr)
            return 1
    if args.status:
        from envdoctor._certify import certificate_status

        st = certificate_status(args.matrix, tier=args.tier, device=args.device, deep=args.verify_files)
        sys.stdout.write(render_status_json(st) if json_out else render_status(st))
        return 0 if st.valid and not notice else 1

    from envdoctor._certify.certify import certify_environment

    def progress(r: Any) -> None:
        print(f"  tier {r.tier} {r.name}: {r.status} ({r.duration_s:.1f} s)", file=sys.stderr, flush=True)

    result = certify_environment(args.matrix, tier=args.tier, device=args.device, timeout=args.timeout,
                                 reporter=None if json_out else progress, keep_going=args.keep_going,
                                 extra_probes=tuple(args.probe), verify_files=args.verify_files)
    sys.stdout.write(render_json(result) if json_out else render_text(result, verbose=args.verbose))
    return 0 if result.certified else 1
