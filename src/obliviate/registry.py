"""A tiny generic registry used for datasets, models and unlearning methods."""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

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


def keyword_defaults(cls: type) -> dict[str, Any]:
    """The keyword-only arguments of ``cls.__init__`` and their defaults."""
    signature = inspect.signature(cls.__init__)
    return {name: p.default for name, p in signature.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}  # fmt: skip


def _scalar_type(annotation: Any) -> type | None:
    """``float`` for ``float``/``float | None``; ``None`` when not a plain scalar."""
    options = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    for kind in (bool, int, float, str):
        if kind in options:
            return kind
    return None


def coerce_keywords(cls: type, raw: dict[str, str], *, owner: str, noun: str,
                    known: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Turn ``{"alpha": "10"}`` (from a command line) into typed keyword arguments of
    ``cls.__init__`` (among ``known``, default: every keyword-only one), by their annotations.

    Raises:
        ObliviateError: an unknown name (the known ones are listed) or a value of the wrong type;
            ``owner`` (e.g. ``"method 'ssd'"``) and ``noun`` (``"hyperparameter"``) word it.
    """
    defaults = keyword_defaults(cls) if known is None else known
    hints = typing.get_type_hints(cls.__init__)
    out: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in defaults:
            raise ObliviateError(f"{owner} has no {noun} {key!r}; known: "
                                 f"{', '.join(defaults) or '(none)'}")  # fmt: skip
        kind = _scalar_type(hints.get(key))
        if text.lower() == "none" and type(None) in typing.get_args(hints.get(key)):
            out[key] = None
            continue
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = text.lower() in ("true", "1")
            elif kind is not None:
                out[key] = kind(text)
            else:
                out[key] = text
        except ValueError:
            article = "an" if kind.__name__[0] in "aeiou" else "a"
            raise ObliviateError(f"{noun} {key}={text!r} of {owner.split(' ', 1)[-1]} must be "
                                 f"{article} {kind.__name__}") from None  # fmt: skip
    return out
