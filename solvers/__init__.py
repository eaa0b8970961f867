"""Solvers: how problems are solved.  ``solvers.get(name, **params)`` builds one.

The registry below is the one place a solver is added: subclass :class:`~solvers.base.Solver`
(see its contract) and list the class in ``_CLASSES``.  Heavy optional dependencies are imported
inside a solver's methods, so listing solvers needs none of them.
"""

from __future__ import annotations

from typing import Any

from problems.parameters import ParameterError

from .base import Budget, Observables, Solver
from .crank_nicolson import CrankNicolson

__all__ = ["get", "names", "solver_class", "Solver", "Observables", "Budget"]

_CLASSES: tuple[type[Solver], ...] = (CrankNicolson,)
REGISTRY: dict[str, type[Solver]] = {cls.name: cls for cls in _CLASSES}


def names() -> list[str]:
    return list(REGISTRY)


def solver_class(name: str) -> type[Solver]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown solver '{name}'; known: {', '.join(REGISTRY)}") from None


def get(name: str, **params: Any) -> Solver:
    """Build the solver ``name`` with validated ``params``."""
    return solver_class(name)(params)
