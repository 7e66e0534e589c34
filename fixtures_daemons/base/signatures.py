"""Real signatures for fixture classes whose ``__init__`` passes
``**kwargs`` on to its base.

A daemon's ``__init__`` takes its own keyword parameters and hands the
rest (``mode``, ``port``, ``timeout``, ...) to its base. Python then shows
``(*, database=..., **kwargs)`` and reports a misspelt keyword deep in the
base, naming the base. Here the class gets the merged signature of every
``__init__`` in its MRO (what ``inspect.signature``, Sphinx and the CLI's
options read), and a metaclass checks the arguments against it before
``__init__`` runs, so ``PostgresqlFixture(databse="x")`` says
``PostgresqlFixture() got an unexpected keyword argument 'databse'; did
you mean 'database'?``. The arguments are kept on the instance as
``arguments``: a named daemon's holder makes the same fixture again from
them.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing

__all__ = ["CheckedArguments", "keyword_parameters", "set_signature", "check_arguments"]

_T = typing.TypeVar("_T")


def keyword_parameters(cls: type) -> list[inspect.Parameter]:
    """The keyword-only parameters of ``cls``'s ``__init__`` and its
    bases', the class's own first."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind is param.KEYWORD_ONLY and param.name not in found:
                found[param.name] = param
    return list(found.values())


def set_signature(cls: type) -> None:
    """Give ``cls`` its merged signature (call it for every subclass)."""
    setattr(cls, "__signature__", inspect.Signature(keyword_parameters(cls)))  # noqa: B010


def check_arguments(cls: type, *args: typing.Any, **kwargs: typing.Any) -> None:
    """Raise TypeError, naming ``cls`` and the closest parameter, for
    arguments its constructor does not take."""
    if args:
        raise TypeError(
            "%s() takes keyword arguments only (got %d positional)" % (cls.__name__, len(args))
        )
    known = list(inspect.signature(cls).parameters)
    for name in kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = "; did you mean %r?" % close[0] if close else ""
            raise TypeError(
                "%s() got an unexpected keyword argument %r%s" % (cls.__name__, name, hint)
            )


class CheckedArguments(type):
    """The metaclass: checks the keyword arguments before ``__init__``
    runs, and keeps them as the instance's ``arguments``."""

    def __call__(cls: type[_T], *args: typing.Any, **kwargs: typing.Any) -> _T:
        check_arguments(cls, *args, **kwargs)
        instance = super().__call__(**kwargs)  # type: ignore[misc]
        instance.arguments = types.MappingProxyType(dict(kwargs))
        return typing.cast(_T, instance)
