"""`envdoctor.install_excepthook()`: annotate uncaught errors with explain's diagnoses (scripts, IPython, Colab)."""

from __future__ import annotations

from typing import Any

_installed = False


def install_excepthook(*, matrix: str | None = None) -> None:
    """Annotate uncaught errors with envdoctor's explanation (sys.excepthook, and IPython/Colab when running)."""
    global _installed
    if _installed:
        return
    import sys

    previous = sys.excepthook

    def hook(etype: type[BaseException], value: BaseException, tb: Any) -> None:
        previous(etype, value, tb)
        _annotate(value, matrix)

    sys.excepthook = hook
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        ip = None
    else:
        ip = get_ipython()
    if ip is not None:
        def ipython_handler(shell: Any, etype: Any, value: BaseException, tb: Any, tb_offset: Any = None) -> Any:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            _annotate(value, matrix)

        ip.set_custom_exc((Exception,), ipython_handler)
    _installed = True


def _annotate(value: BaseException, matrix: str | None) -> None:
    import sys

    try:
        from .explain import explain

        explanation = explain(value, matrix=matrix)
    except Exception as e:  # the hook must never hide the user's own error
        print(f"envdoctor: could not explain this error: {e}", file=sys.stderr)
        return
    if explanation.recognised:
        print(str(explanation), file=sys.stderr, end="")
