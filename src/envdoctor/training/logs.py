"""The run's logs: metrics.jsonl (one JSON object per logged step or evaluation), TensorBoard when installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Log:
    """metrics.jsonl, and TensorBoard scalars (train/*, eval/loss) when tensorboard imports."""

    def __init__(self, out: Path) -> None:
        self.writer = _writer(out)
        self.metrics = (out / "metrics.jsonl").open("a", encoding="utf-8")

    def _record(self, rec: dict[str, Any]) -> None:
        self.metrics.write(json.dumps(rec, sort_keys=True) + "\n")
        self.metrics.flush()

    def write(self, step: int, loss: float, lr: float, tokens_per_s: float, epoch: int, trained_tokens: int) -> None:
        """One optimizer step."""
        self._record({"step": step, "loss": loss, "lr": lr, "tokens_per_s": round(tokens_per_s, 1), "epoch": epoch,
                      "trained_tokens": trained_tokens})
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/tokens_per_s", tokens_per_s, step)

    def write_eval(self, step: int, eval_loss: float, tokens: int) -> None:
        """One evaluation (the token-weighted mean loss over the eval set)."""
        self._record({"step": step, "eval_loss": eval_loss, "eval_tokens": tokens})
        if self.writer is not None:
            self.writer.add_scalar("eval/loss", eval_loss, step)

    def close(self) -> None:
        """Flush and close both."""
        self.metrics.close()
        if self.writer is not None:
            self.writer.close()


class NullLog(Log):
    """What ranks other than 0 log: nothing."""

    def __init__(self) -> None:
        self.writer = None

    def _record(self, rec: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: metrics.jsonl only
        return None
    return SummaryWriter(str(out / "logs"))
