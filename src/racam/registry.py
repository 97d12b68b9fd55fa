"""One registry idiom for everything racam chooses by name: heat-map methods, classifier
backbones, segmentation networks and datasets.

A :class:`Registry` maps names to entries (a class, a spec, a builder) in registration order::

    LOSSES: Registry[LossFn] = Registry("loss")

    @LOSSES.register("ce")                  # a decorator for a class or a function
    def cross_entropy(logits, target): ...

    LOSSES.add("dice", dice_loss)           # or a plain call (data entries: specs)
    LOSSES.get("ce")                        # unknown: ConfigError naming the choices
    LOSSES.names()                          # what config checks, CLI help and `racam list` show

Where an entry is a spec around a function, a kind has its own decorator that builds the spec
and calls :meth:`Registry.add` (:func:`racam.models.registry.register_backbone`, as timm's
``@register_model``); heat-map classes register themselves when subclassed.

The registries themselves live next to what they hold (:mod:`racam.cam.registry`,
:mod:`racam.models.registry`, :mod:`racam.segmentation.networks`, :mod:`racam.data.registry`);
:mod:`racam.catalog` reads all four for ``racam list``. A name is registered once: a second
entry under a taken name is refused, except the same class or function defined again (a module
reloaded). Tests add entries inside :meth:`Registry.scratch`, which restores the registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from racam.errors import ConfigError

T = TypeVar("T")
E = TypeVar("E")


def _defined_at(obj: object) -> tuple[str, str] | None:
    """``(module, qualname)`` of a class or function, ``None`` for other objects."""
    qualname = getattr(obj, "__qualname__", None)  # instances have none
    return (getattr(obj, "__module__", ""), qualname) if qualname else None


def first_line(text: str | None) -> str:
    """The first line of a docstring (``""`` for none), whitespace collapsed."""
    return " ".join((text or "").strip().split("\n\n")[0].split())


def choices_error(kind: str, name: object, choices: Sequence[str]) -> ConfigError:
    """The one-line error for a name not among ``choices``:
    ``unknown classifier backbone 'x'; choose one of vgg16, vgg16_narrow, ...``."""
    return ConfigError(f"unknown {kind} {name!r}; choose one of {', '.join(choices)}")


class Registry(Generic[T]):
    """Named entries of one kind (``kind`` names it in errors: ``"dataset"``).

    ``normalise`` maps a requested name to its key (e.g. lower-case, stripped; default: the
    name itself); ``describe`` gives an entry's one-line summary for ``racam list`` (default:
    its ``description`` attribute, else the first line of its docstring).
    """

    def __init__(self, kind: str, *, normalise: Callable[[str], str] | None = None,
                 describe: Callable[[T], str] | None = None) -> None:
        self.kind = kind
        self._normalise = normalise
        self._describe = describe
        self._entries: dict[str, T] = {}

    def key(self, name: object) -> str:
        """The key a requested name is looked up under."""
        return self._normalise(str(name)) if self._normalise else str(name)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it; a taken name is a ConfigError
        (unless ``entry`` is the same class or function defined again)."""
        if not name or self.key(name) != name:
            raise ConfigError(f"{self.kind} name {name!r} is not a valid registry name")
        old = self._entries.get(name)
        if old is not None and old is not entry:
            where = _defined_at(old)
            if where is None or where != _defined_at(entry):
                owner = where or (type(old).__module__, f"{type(old).__qualname__}()")
                raise ConfigError(f"{self.kind} name {name!r} is already registered: taken "
                                  f"by {owner[0]}.{owner[1]}")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[E], E]:
        """Decorator form of :meth:`add` for a class or function that is the entry itself."""
        def decorate(obj: E) -> E:
            self.add(name, obj)  # type: ignore[arg-type]  # E is T where the decorator is used
            return obj
        return decorate

    def remove(self, name: str) -> None:
        """Drop an entry (nothing happens for an unknown name)."""
        self._entries.pop(name, None)

    def find(self, name: object) -> T | None:
        """The entry of ``name`` (normalised), ``None`` when there is none."""
        return self._entries.get(self.key(name))

    def get(self, name: object) -> T:
        """The entry of ``name``; else a ConfigError naming ``name`` and every choice."""
        entry = self.find(name)
        if entry is None:
            raise self.unknown(name)
        return entry

    def unknown(self, name: object, choices: Sequence[str] | None = None) -> ConfigError:
        """The error for an unknown ``name`` (``choices``: default :meth:`names`)."""
        return choices_error(self.kind, name, self.names() if choices is None else choices)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, in registration order."""
        return list(self._entries.items())

    def describe(self, name: str) -> str:
        """One line about the entry ``name`` (for ``racam list``)."""
        entry = self.get(name)
        if self._describe is not None:
            return self._describe(entry)
        text = getattr(entry, "description", None)
        return first_line(text if isinstance(text, str) else getattr(entry, "__doc__", None))

    def view(self) -> Sequence[str]:
        """A live, read-only sequence of :meth:`names` (an entry added later shows up)."""
        return NamesView(self.names)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Registry[T]]:
        """Entries added inside the block are dropped after it (tests)."""
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries.clear()
            self._entries.update(saved)

    def __contains__(self, name: object) -> bool:
        return self.find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


class NamesView(Sequence[str]):
    """A live, read-only view of a function's list of names (``racam.models.BACKBONES``,
    ``racam.cam.METHODS``): every read calls ``names()``, so later registrations show up."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self._names = names

    def __getitem__(self, i: Any) -> Any:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __repr__(self) -> str:
        return repr(self._names())
