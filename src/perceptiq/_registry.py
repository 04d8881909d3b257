"""One registry idiom for everything perceptiq creates by name (metrics, models, protocols).

A :class:`Registry` maps a name to a factory. Registration is a decorator; duplicates raise;
unknown names raise :class:`~perceptiq.errors.RegistryError` with close-match suggestions.
Registries are created once per kind at import time of the module that owns them and are never
mutated afterwards except by registration decorators, so there is no other global state.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from perceptiq.errors import RegistryError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """A named collection of factories of one kind (e.g. ``"metric"``).

    Example:
        >>> reg: Registry[int] = Registry("number")
        >>> @reg.register("one")
        ... def make_one() -> int:
        ...     return 1
        >>> reg.create("one")
        1
        >>> reg.names()
        ['one']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name`` (lower-case, unique)."""
        key = name.lower()

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if key in self._factories:
                raise RegistryError(f"{self.kind} {key!r} is already registered")
            self._factories[key] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered under ``name`` or raise with suggestions."""
        key = name.lower()
        if key not in self._factories:
            close = difflib.get_close_matches(key, list(self._factories), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._factories))
            raise RegistryError(f"unknown {self.kind} {name!r}{hint} (known: {known})")
        return self._factories[key]

    def create(self, name: str, **options: object) -> T:
        """Build the object registered under ``name`` with keyword ``options``."""
        return self.get(name)(**options)

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._factories)
