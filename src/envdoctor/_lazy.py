"""PEP 562 lazy public names: a package's `__getattr__` loads a name from the module that defines it on first use.

Stdlib only and imports nothing at import time: `import envdoctor` stays ~1 ms and `guard()` loads nothing heavy.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Collection, Mapping, MutableMapping
    from typing import Any


def load(package: str, namespace: MutableMapping[str, Any], table: Mapping[str, str], name: str, *,
         aliases: Mapping[str, str] | None = None, modules: Collection[str] = ()) -> Any:
    """`name` of `package` from the module `table` names for it (relative to `package`), cached in `namespace`.

    `aliases` maps a public name to the attribute it is in its module; a name in `modules` is that module itself.
    """
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    # `importlib.import_module` without importing importlib (and warnings with it): ~0.5 ms of the guard's call
    level = len(module) - len(module.lstrip("."))
    base = package.rsplit(".", level - 1)[0] if level > 1 else package
    absolute = f"{base}.{module[level:]}" if level else module
    __import__(absolute)
    mod = sys.modules[absolute]
    value = mod if name in modules else getattr(mod, (aliases or {}).get(name, name))
    namespace[name] = value
    return value
