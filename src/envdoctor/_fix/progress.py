"""Console progress for `fix`: a rich bar per step on a terminal, one line per step otherwise (CI logs)."""

from __future__ import annotations

from typing import IO, Any

from .plan import Step


class ConsoleReporter:
    """Draws a bar per step with the installer's last line; the full output goes to the log file only."""

    def __init__(self, stream: IO[str], quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._progress: Any = None
        self._task: Any = None
        self._lines = 0

    def start(self, index: int, total: int, step: Step) -> None:
        self._lines = 0
        if self.quiet:
            return
        head = f"[{index + 1}/{total}] {step.title}: {' '.join(step.packages)}"
        if not self.tty:
            print(head, file=self.stream, flush=True)
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self._progress is None:
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.fields[last]}", style="dim"), TimeElapsedColumn(),
                                      console=Console(file=self.stream), transient=False)
            self._progress.start()
        self._task = self._progress.add_task(head, total=None, last="")

    def line(self, text: str) -> None:
        self._lines += 1
        if self._progress is not None and self._task is not None and text.strip():
            self._progress.update(self._task, last=text.strip()[:60])

    def finish(self, index: int, ok: bool) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=1, completed=1, last="done" if ok else "FAILED")
        elif not self.quiet and not ok:
            print(f"[{index + 1}] FAILED", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
