"""The one lookup every name registry shares (algorithms, estimators, baselines, consensus kinds, ...).

Each concept has one registry, a dict from name to its spec or function, in the module that owns the
concept; ``tuple(registry)`` is the list of names that CLIs offer as ``choices=`` and configs validate
against. :func:`lookup` is the single place that turns an unknown name into an error, so the message is
the same everywhere: ``unknown <what> 'x': <field> must be one of [...]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from dagsim.errors import UnknownNameError

__all__ = ["lookup", "check_name", "unknown_name"]

T = TypeVar("T")


def unknown_name(what: str, name: object, choices: Iterable[str], field: str | None = None) -> UnknownNameError:
    """The error for ``name`` outside ``choices`` (``field``: the config field or flag, default ``what``)."""
    return UnknownNameError(f"unknown {what} {name!r}: {field or what} must be one of {list(choices)}, got {name!r}")


def lookup(registry: Mapping[str, T], name: object, what: str, field: str | None = None) -> T:
    """``registry[name]``, or :class:`UnknownNameError` naming ``field`` and every registered name."""
    if isinstance(name, str) and name in registry:
        return registry[name]
    raise unknown_name(what, name, registry, field)


def check_name(choices: Iterable[str], name: object, what: str, field: str | None = None) -> str:
    """``name`` if it is one of ``choices`` (a registry's names or a documented subset), else the error."""
    choices = tuple(choices)
    if isinstance(name, str) and name in choices:
        return name
    raise unknown_name(what, name, choices, field)
