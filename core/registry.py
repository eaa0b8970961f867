"""Registries of named plug-in classes (problems, solvers) and the loading of plug-in modules."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .parameters import ParameterError

__all__ = ["Registry", "PluginError", "load_plugins", "plugin_entries", "is_path", "PLUGINS_ENV"]


class Registry:
    """Named classes of one kind (problems or solvers): the one place a plug-in is listed.

    ``build(cls, params)`` makes an instance from validated keyword parameters; ``base`` (if
    given) is the class every registered class must subclass.  Classes shipped with the package
    are passed to the constructor; others are added with :meth:`register`, typically by a plug-in
    module named in ``$DSM_BENCH_PLUGINS``: the plug-ins are imported when a registry is first
    asked for a name (:meth:`names`, :meth:`cls`, :meth:`get`), see :func:`load_plugins`.
    """

    def __init__(self, kind: str, classes, build, base: type | None = None):
        self.kind = kind
        self.base = base
        self.classes: dict[str, type] = {}
        self._build = build
        for cls in classes:
            self.register(cls)

    def register(self, cls: type) -> type:
        """Add ``cls`` under its ``name`` and return it (usable as a class decorator).

        Registering the same class twice is a no-op; another class under a taken name, a class
        without a name, or one that does not subclass ``base`` raises :class:`ParameterError`.
        """
        name = getattr(cls, "name", None)
        if not isinstance(cls, type) or not isinstance(name, str) or not name:
            raise ParameterError(f"a {self.kind} to register must be a class with a non-empty "
                                 f"'name', got {cls!r}")
        if self.base is not None and not issubclass(cls, self.base):
            raise ParameterError(f"{self.kind} {name!r}: {cls.__qualname__} does not subclass "
                                 f"{self.base.__qualname__}")
        taken = self.classes.get(name)
        if taken is not None and taken is not cls:
            raise ParameterError(f"{self.kind} {name!r} is already registered "
                                 f"({taken.__module__}.{taken.__qualname__})")
        self.classes[name] = cls
        return cls

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        load_plugins()
        return list(self.classes)

    def cls(self, name: str):
        """The class registered as ``name``; unknown names raise :class:`ParameterError`."""
        load_plugins()
        try:
            return self.classes[name]
        except KeyError:
            raise ParameterError(
                f"unknown {self.kind} '{name}'; known: {', '.join(self.classes)}") from None

    def get(self, name: str, **params: Any):
        """An instance of ``name`` with ``params`` overriding its defaults (validated)."""
        return self._build(self.cls(name), params)


# --- plug-ins -------------------------------------------------------------------------------
#: Environment variable naming plug-in modules, comma-separated: importable module names
#: (``mypkg.mysolver``) or paths to ``.py`` files.
PLUGINS_ENV = "DSM_BENCH_PLUGINS"

_PLUGINS: dict[str, ModuleType] = {}
_LOADING: set[str] = set()


class PluginError(ParameterError):
    """A plug-in named in ``$DSM_BENCH_PLUGINS`` could not be loaded."""


def plugin_entries(text: str | None = None) -> list[str]:
    """The plug-in entries in ``text`` (default: ``$DSM_BENCH_PLUGINS``), in order, no blanks."""
    if text is None:
        text = os.environ.get(PLUGINS_ENV, "")
    return [e.strip() for e in text.split(",") if e.strip()]


def is_path(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or os.sep in entry


def _import_file(entry: str) -> ModuleType:
    path = Path(entry).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"dsm_bench_plugin_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_plugins(entries: list[str] | None = None) -> list[ModuleType]:
    """Import the plug-in modules (default: those in ``$DSM_BENCH_PLUGINS``), each once.

    The registries call this whenever they are asked for names or classes, so a plug-in is
    present wherever the registries are used, in spawned worker processes too (they inherit the
    environment).  A plug-in registers its classes with ``problems.register(cls)`` /
    ``solvers.register(cls)``.  A plug-in that cannot be imported raises :class:`PluginError`
    (and is tried again at the next call).
    """
    modules = []
    for entry in plugin_entries() if entries is None else entries:
        if entry in _PLUGINS:
            modules.append(_PLUGINS[entry])
            continue
        if entry in _LOADING:  # a plug-in importing problems/solvers while it loads
            continue
        _LOADING.add(entry)
        try:
            module = _import_file(entry) if is_path(entry) else importlib.import_module(entry)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"{PLUGINS_ENV}: cannot load plug-in {entry!r}: "
                              f"{type(exc).__name__}: {exc}") from exc
        finally:
            _LOADING.discard(entry)
        _PLUGINS[entry] = module
        modules.append(module)
    return modules
