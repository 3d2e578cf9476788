"""The built-in probes, one module per concern; importing this package registers them (no heavy imports here)."""

from __future__ import annotations

from . import device, hf, imports, quant, tiny  # noqa: F401  (each module registers its probes)

# What `certify` runs when a matrix names no [[probes]]: the tiers 1 to 3.
DEFAULT_PROBES: tuple[tuple[str, int], ...] = (
    ("imports", 1),
    ("cuda-available", 2),
    ("cuda-arch", 2),
    ("bf16-matmul", 2),
    ("bnb-nf4-matmul", 2),
    ("bnb-8bit-optim", 2),
    ("llama31-rope", 2),
    ("training-args", 2),
    ("tiny-qlora", 3),
)
