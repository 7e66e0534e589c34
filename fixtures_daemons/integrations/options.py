"""A daemon's parameters, read from its class: one declaration, two uses.

The CLI's options for a daemon are not listed anywhere: they are the
keyword-only parameters of the fixture class's ``__init__`` (and of its
bases), their types from the annotations and their help from the
``:param name:`` lines of the docstrings. A parameter added to a daemon is
an option of ``fixtures-daemons run DAEMON`` at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing

__all__ = ["Option", "daemon_options", "add_arguments", "kwargs_from", "plain"]

#: Parameters that are the CLI's business, not the user's.
HIDDEN = {"env_prefix", "export_env", "reuse", "mode", "share", "upstream"}

# A parameter's text runs to the next field (":param x:", ":ivar y:"), not to
# the next line that starts with a role (":class:`...`" continues it).
_PARAM = re.compile(r":param (\w+):(.*?)(?=\n\s*:\w+(?: \w+)?:(?!`)|\n\s*\n|\Z)", re.S)


@dataclasses.dataclass
class Option:
    name: str
    kind: str  # "str", "int", "float", "bool", "mapping", "list"
    default: object
    help: str


# ":class:`~fixtures_daemons.PortUnavailable`" -> "PortUnavailable", and
# ``literal`` -> literal: help text is read in a terminal, not rendered.
_ROLE = re.compile(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str) -> str:
    """Docstring text for a terminal: one line, without Sphinx markup."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", " ".join(text.split())))


def metavar(name: str) -> str:
    """What an option's value is, in its usage line: ``--port PORT``,
    ``--timeout SECONDS``, ``--binary PATH``, else the name itself
    (``--database DATABASE``)."""
    if name == "port" or name.endswith("_port"):
        return "PORT"
    special = {
        "timeout": "SECONDS",
        "host": "ADDRESS",
        "binary": "PATH",
        "temp_root": "DIR",
        "os_user": "USER",
    }
    if name in special:
        return special[name]
    if name.endswith(("_cert", "_key", "_file")) or name == "template":
        return "FILE"
    return name.upper()


def _docs(cls: type) -> dict[str, str]:
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for match in _PARAM.finditer(inspect.getdoc(klass) or ""):
            docs[match.group(1)] = plain(match.group(2))
    return docs


def _kind(annotation: object) -> str:
    text = str(annotation)
    for kind, markers in (
        ("bool", ("bool",)),
        ("mapping", ("Mapping", "dict")),
        ("list", ("Sequence", "list")),
        ("int", ("int",)),
        ("float", ("float",)),
    ):
        if any(m in text for m in markers):
            return kind
    return "str"


def daemon_options(cls: type) -> list[Option]:
    """The options of a daemon class, its own first."""
    docs = _docs(cls)
    options: dict[str, Option] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # unresolvable annotations: fall back to text
            hints = {}
        for param in inspect.signature(init).parameters.values():
            if param.kind is not param.KEYWORD_ONLY or param.name in HIDDEN:
                continue
            if param.name in options:
                continue
            annotation = hints.get(param.name, param.annotation)
            options[param.name] = Option(
                param.name, _kind(annotation), param.default, docs.get(param.name, "")
            )
    return list(options.values())


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one argparse option per daemon parameter."""
    for option in daemon_options(cls):
        flag = "--" + option.name.replace("_", "-")
        help_text = option.help or option.name
        if option.kind == "bool":
            parser.add_argument(
                flag,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif option.kind == "mapping":
            parser.add_argument(
                flag,
                dest=option.name,
                action="append",
                metavar="KEY=VALUE",
                default=None,
                help=help_text + " (repeatable)",
            )
        elif option.kind == "list":
            parser.add_argument(
                flag,
                dest=option.name,
                action="append",
                metavar="VALUE",
                default=None,
                help=help_text + " (repeatable)",
            )
        else:
            converter = {"int": int, "float": float}.get(option.kind, str)
            shown = (
                ""
                if option.default in (None, inspect.Parameter.empty)
                else (" (default: %s)" % option.default)
            )
            parser.add_argument(
                flag,
                dest=option.name,
                type=converter,
                default=None,
                metavar=metavar(option.name),
                help=help_text + shown,
            )


def kwargs_from(namespace: argparse.Namespace, cls: type) -> dict[str, object]:
    """The keyword arguments given on the command line, for ``cls(**kw)``."""
    kwargs: dict[str, object] = {}
    for option in daemon_options(cls):
        value = getattr(namespace, option.name, None)
        if value is None:
            continue
        if option.kind == "mapping":
            pairs = {}
            for item in typing.cast(list[str], value):
                key, sep, val = item.partition("=")
                if not sep:
                    raise ValueError("--%s takes KEY=VALUE, not %r" % (option.name, item))
                pairs[key] = val
            value = pairs
        kwargs[option.name] = value
    return kwargs
