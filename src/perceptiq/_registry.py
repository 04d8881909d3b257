"""One registry idiom for everything perceptiq creates by name (metrics, models, protocols).

A :class:`Registry` maps a name to a factory. Registration is a decorator; duplicates raise;
unknown names raise :class:`~perceptiq.errors.RegistryError` with close-match suggestions.
Keyword options are checked here, once for every kind: an option the factory does not accept raises
:class:`~perceptiq.errors.OptionError`, one line naming the bad key and listing the accepted ones.
By default the accepted options are the factory's keyword parameters (for a class, its ``__init__``,
which for a dataclass is its fields); a registry whose factories take their options elsewhere (the
model variants, whose options are the fields of the config they return) passes its own ``options``.
Registries are created once per kind at import time of the module that owns them and are never
mutated afterwards except by registration decorators, so there is no other global state.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from perceptiq.errors import OptionError, RegistryError

T = TypeVar("T")

__all__ = ["Registry", "OptionSpec", "REQUIRED", "signature_options", "option_error"]

REQUIRED: Any = inspect.Parameter.empty
"""Default shown for an option that has none (a required keyword)."""

OptionSpec = tuple[dict[str, Any], bool]
"""Accepted options of a factory: ``{name: default}`` and whether it takes any other keyword as well."""


def option_error(owner: str, unknown: Iterable[str], accepted: Iterable[str]) -> OptionError:
    """One-line error for options ``unknown`` of ``owner`` (e.g. ``"metric 'ssim'"``), with suggestions."""
    unknown, names = list(unknown), sorted(accepted)
    close = [m for key in unknown for m in _closest(key, names)]
    hint = f" (did you mean {', '.join(repr(m) for m in close)}?)" if close else ""
    what = "option" if len(unknown) == 1 else "options"
    return OptionError(
        f"{owner} has no {what} {', '.join(repr(k) for k in unknown)}{hint}; "
        f"accepted: {', '.join(names) or 'none'}"
    )


def _closest(key: str, names: list[str]) -> list[str]:
    """The accepted name most like ``key`` (similar spelling, or one a prefix of the other), if any."""
    similar = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return similar or [n for n in names if n.startswith(key) or key.startswith(n)][:1]


def signature_options(factory: Callable[..., Any]) -> OptionSpec:
    """Keyword parameters of ``factory`` with their defaults, and whether it also takes ``**kwargs``.

    A factory whose signature cannot be read (some builtins) is taken to accept anything.
    """
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}, True
    named = {
        p.name: p.default
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


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

    def __init__(
        self, kind: str, options: Callable[[Callable[..., T]], OptionSpec] = signature_options
    ) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._options = options

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

    def options(self, name: str) -> OptionSpec:
        """Options accepted by ``name``: ``{option: default}`` and whether other keywords pass as well."""
        return self._options(self.get(name))

    def check_options(self, name: str, options: Iterable[str]) -> None:
        """Raise :class:`~perceptiq.errors.OptionError` unless ``name`` accepts every key of ``options``.

        Example:
            >>> reg: Registry[int] = Registry("number")
            >>> _ = reg.register("scaled")(lambda value=1, scale=2: value * scale)
            >>> try:
            ...     reg.create("scaled", sclae=3)
            ... except OptionError as err:
            ...     print(err)
            number 'scaled' has no option 'sclae' (did you mean 'scale'?); accepted: scale, value
        """
        given = list(options)
        if not given:
            return
        accepted, open_ended = self.options(name)
        unknown = [key for key in given if key not in accepted]
        if not unknown or open_ended:
            return
        raise option_error(f"{self.kind} {name.lower()!r}", unknown, accepted)

    def create(self, name: str, **options: object) -> T:
        """Build the object registered under ``name`` with keyword ``options`` (checked first)."""
        self.check_options(name, options)
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
