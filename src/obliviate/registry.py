"""A tiny generic registry used for datasets, models and unlearning methods."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from obliviate.errors import ObliviateError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (factories, classes) so that adding one never touches a switch.

    >>> models = Registry[type]("model")
    >>> @models.register("fc")
    ... class FC: ...
    >>> models.get("fc") is FC
    True
    """

    def __init__(self, kind: str, *, plugins: tuple[str, ...] = ()) -> None:
        """``plugins``: modules that register more entries, imported on the first lookup. A
        module low in the package (the model file) can then find what a module above it
        registers without importing it."""
        self.kind = kind
        self._items: dict[str, T] = {}
        self._plugins = plugins
        self._plugins_loaded = not plugins

    def _load_plugins(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True  # first: a plugin's own lookups must not recurse
            for module in self._plugins:
                importlib.import_module(module)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under ``name``."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` or raise an error listing the known names."""
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ObliviateError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
