"""`GuardCallback` for HF `Trainer` / TRL `SFTTrainer`: refuse to train in an environment that is not certified.

    from envdoctor.integrations.transformers import GuardCallback
    trainer = SFTTrainer(..., callbacks=[GuardCallback(matrix="llama31", tier=2)])

The check runs in `on_train_begin` (https://huggingface.co/docs/transformers/main_classes/callback), which
`Trainer.train()` calls after the model, optimizer and data loader are set up and before the first step: with a
valid certificate it is a file read; without one `NotCertifiedError` propagates out of `train()`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from transformers import TrainerCallback

from .. import guard
from ..errors import NotCertifiedError


def _is_main(state: Any) -> bool:
    """Rank 0 of a distributed run (the Trainer's state says so; else the launcher's RANK)."""
    main = getattr(state, "is_world_process_zero", None)
    if isinstance(main, bool):
        return main
    return os.environ.get("RANK", "0") == "0"


class GuardCallback(TrainerCallback):  # type: ignore[misc]
    """Check the environment against `matrix` at `tier` when training begins; raise NotCertifiedError if not certified.

    Every rank checks (each must stop); only rank 0 prints. `device` is passed to `envdoctor.guard` (None: the
    detected device).
    """

    def __init__(self, matrix: str = "llama31", tier: int = 2, device: str | None = None) -> None:
        self.matrix, self.tier, self.device = matrix, tier, device
        self.certificate: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Before the first step: the guard, once per `train()` call."""
        main = _is_main(state)
        try:
            self.certificate = guard(matrix=self.matrix, tier=self.tier, device=self.device)
        except NotCertifiedError as e:
            if main:
                print(f"envdoctor: training refused before the first step\n{e}", file=sys.stderr)
            raise
        if main:
            what = "skipped (ENVDOCTOR_SKIP_GUARD)" if self.certificate is None else "certified"
            print(f"envdoctor: {self.matrix} tier {self.tier}: {what}", file=sys.stderr)
        return control
