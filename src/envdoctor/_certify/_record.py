"""A frozen record base for the guard's fast path, plus SHA-256, HMAC and JSON reading at the lowest import cost.

Why not frozen dataclasses / NamedTuple / hashlib, as elsewhere: on a 2-core CI machine importing
`dataclasses` (it pulls in `inspect`) costs ~6 ms, each NamedTuple class ~1 ms (it compiles code), and
`hashlib` ~2.5 ms (it loads libcrypto), against a 10 ms budget for the whole guard. Records here are
immutable, compare by value and have `_asdict()`; SHA-256 comes from CPython's built-in module. Reading JSON
goes through the C scanner of `_json` directly: `import json` pulls in `re` (and with it enum and functools),
another ~3-7 ms on that machine.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~2 ms of the guard's budget)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, ClassVar

try:  # CPython 3.12+: the HACL* implementations live in _sha2
    from _sha2 import sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - CPython 3.10/3.11, or another interpreter
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        from hashlib import sha256  # type: ignore[assignment]

try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover
    from hmac import compare_digest  # type: ignore[no-redef]  # noqa: F401


try:
    from _json import make_scanner as _c_make_scanner
except ImportError:  # pragma: no cover - another interpreter
    _c_make_scanner = None  # type: ignore[assignment,misc]


class _ScanContext:
    """The attributes json.JSONDecoder hands to the C scanner, with json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # 'NaN', 'Infinity', '-Infinity'
    memo: dict[str, str] = {}


def json_loads(text: str) -> Any:
    """json.loads(text) without importing json; raises ValueError on malformed text, as json.loads does."""
    if _c_make_scanner is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = _c_make_scanner(_ScanContext())(text, start)  # type: ignore[arg-type]
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError(f"Extra data: char {end}")
    return value


def hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) as hex; equal to hmac.new(key, message, hashlib.sha256).hexdigest()."""
    if len(key) > 64:
        key = sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return sha256(bytes(k ^ 0x5C for k in key) + inner).hexdigest()


class Record:
    """Base of small immutable value objects: subclasses set `__slots__ = _fields = (...)` and `_defaults`."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes {len(self._fields)} fields, got {len(args)}")
        values = dict(self._defaults)
        values.update(zip(self._fields, args, strict=False))  # fewer args than fields: defaults
        values.update(kwargs)
        unknown = set(values) - set(self._fields)
        missing = [f for f in self._fields if f not in values]
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: unknown {sorted(unknown)}, missing {missing}")
        for f in self._fields:
            object.__setattr__(self, f, values[f])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def _asdict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._fields}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._astuple() == other._astuple()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(repr(v) for v in self._astuple())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields if f != "data")
        return f"{type(self).__name__}({inner})"
