"""`Named`: the one definition of a distribution's normalized key, for every value that has a `name`."""

from __future__ import annotations

from packaging.utils import NormalizedName, canonicalize_name


class Named:
    """A mixin for values with a distribution `name` (a dataclass field of the subclass): `key` is that name
    normalized as PEP 503 says, the form every lookup by package uses ('Foo_Bar' -> 'foo-bar')."""

    __slots__ = ()
    name: str

    @property
    def key(self) -> NormalizedName:
        """The name, PEP 503-normalized."""
        return canonicalize_name(self.name)
