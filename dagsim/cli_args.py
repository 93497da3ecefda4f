"""Command-line flags from frozen config dataclasses: the one dataclass→argparse helper (STYLE §9: config
docs become ``--help``), used by ``dagsim simulate`` (:mod:`dagsim.cli_grpo`), ``dagsim llm ...``
(:mod:`llm.cli`, :mod:`llm.certified`) and ``python -m llm.theory`` (:mod:`llm.theory.cli`).

A field ``name`` becomes ``--[prefix-]name`` (underscores → dashes) with ``dest`` ``[prefix_]name``; its
attribute docstring (the string literal under the field) is its help. The flags a user typed are recorded
(:func:`given_fields`), so that a caller can tell a default from an explicit value (``train --resume``,
``python -m llm.theory --quick``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
from collections.abc import Callable, Mapping


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """Attribute docstrings (the string literal under each field) of a dataclass, by field name, with runs of
    whitespace collapsed to one space."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    docs, body = {}, tree.body[0].body
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


#: Namespace attribute holding the ``dest`` of every flag given explicitly on the command line.
GIVEN = "_given_flags"


def _mark_given(namespace: argparse.Namespace, dest: str) -> None:
    given = set(getattr(namespace, GIVEN, ()))
    given.add(dest)
    setattr(namespace, GIVEN, given)


class StoreGiven(argparse.Action):
    """``store`` that also records the flag as given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark_given(namespace, self.dest)


class BoolGiven(argparse.BooleanOptionalAction):
    """``--flag/--no-flag`` that also records the flag as given."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


def given_fields(args: argparse.Namespace, cls, prefix: str = "") -> set[str]:
    """Names of the fields of ``cls`` whose flags were given on the command line."""
    given = getattr(args, GIVEN, set())
    return {f.name for f in dataclasses.fields(cls) if field_dest(f.name, prefix) in given}


def help_escape(text: str) -> str:
    """argparse %-formats help strings: a literal ``%`` (e.g. "40-70 %" in a docstring) must be doubled."""
    return text.replace("%", "%%")


def field_flag(name: str, prefix: str = "") -> str:
    """``--[prefix-]name`` with underscores as dashes."""
    return "--" + (prefix + name).replace("_", "-")


def field_dest(name: str, prefix: str = "") -> str:
    """The argparse ``dest`` of a field's flag."""
    return (prefix + name).replace("-", "_")


def default_help(name: str, default, doc: str) -> str:
    """``<field docstring> (default: <repr>)``, the help of a generated flag unless the caller gives another."""
    return f"{doc} (default: {default!r})"


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    cls,
    prefix: str = "",
    skip: tuple[str, ...] = (),
    *,
    help_text: Callable[[str, object, str], str] = default_help,
    custom: Mapping[str, Mapping] | None = None,
) -> None:
    """One ``--[prefix-]name`` flag per scalar field of ``cls`` in field order (default = the field's default).

    Booleans get ``--name/--no-name``. Nested dataclasses and tuple fields get no flag (``stop_strings``: a
    repeatable ``--stop-string`` added by the caller) unless ``custom`` names them: ``custom[name]`` are the
    ``add_argument`` keyword arguments of that field's flag (given-tracking included unless they name their own
    ``action``, e.g. ``"append"``), added in its place.
    ``help_text(name, default, docstring)`` writes each generated flag's help (%-escaped here).
    """
    docs = field_docs(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = getattr(defaults, f.name)
        flag, dest = field_flag(f.name, prefix), field_dest(f.name, prefix)
        if custom and f.name in custom:
            kwargs = dict(custom[f.name])
            parser.add_argument(flag, dest=dest, action=kwargs.pop("action", StoreGiven), **kwargs)
            continue
        if dataclasses.is_dataclass(default) or isinstance(default, tuple):
            continue
        text = help_escape(help_text(f.name, default, docs.get(f.name, "")))
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action=BoolGiven, default=default, help=text)
        else:
            parser.add_argument(flag, dest=dest, action=StoreGiven, type=type(default), default=default, help=text)


def build_dataclass(cls, args: argparse.Namespace, prefix: str = "", **nested):
    """``cls`` from the parsed flags of its fields (``nested``: values of fields that have no flag)."""
    values = {}
    for f in dataclasses.fields(cls):
        dest = field_dest(f.name, prefix)
        if f.name in nested:
            values[f.name] = nested[f.name]
        elif hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    return cls(**values)
