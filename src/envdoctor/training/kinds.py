"""The trainer's vocabularies (methods, devices, dtypes) and its typed lever outcome; no torch."""

from __future__ import annotations

from typing import Literal, NamedTuple

TrainMethod = Literal["qlora", "galore"]  # what a user asks for
Method = Literal["qlora", "galore", "lora"]  # what runs: "lora" is QLoRA's CPU path (full-precision base)
Device = Literal["cuda", "cpu"]
Dtype = Literal["bf16", "fp16", "fp32"]
DtypeChoice = Literal["auto", "bf16", "fp16", "fp32"]
FastChoice = Literal["auto", "on", "off"]
Quantize = Literal["nf4", "none"]
ParallelChoice = Literal["auto", "ddp", "fsdp"]  # what a user asks for under torchrun
Parallel = Literal["none", "ddp", "fsdp"]  # what runs


class Outcome(NamedTuple):
    """Whether a lever (or a check) holds here, and the note that says so or why not."""

    ok: bool
    note: str
