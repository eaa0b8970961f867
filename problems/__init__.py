"""Problems: what is solved.  ``problems.get(name, **params)`` builds a validated problem.

The registry below is the one place a problem is added: write a frozen dataclass subclassing
:class:`~problems.base.Problem` and list it in ``_CLASSES``.
"""

from __future__ import annotations

from typing import Any

from .base import GridHint, Invariants, Problem, Reference
from .bosons import Bosons
from .packet import GaussianPacket, Harmonic1D, Harmonic1DMoving, HarmonicND, Singular1D
from .parameters import ParameterError, ParamSpec

__all__ = ["get", "names", "problem_class", "Problem", "Reference", "GridHint", "Invariants",
           "ParameterError", "ParamSpec", "GaussianPacket", "Bosons"]

_CLASSES: tuple[type[Problem], ...] = (Harmonic1D, Harmonic1DMoving, HarmonicND, Singular1D, Bosons)
REGISTRY: dict[str, type[Problem]] = {cls.name: cls for cls in _CLASSES}


def names() -> list[str]:
    """Registered problem names, in registration order."""
    return list(REGISTRY)


def problem_class(name: str) -> type[Problem]:
    """The class registered as ``name``; unknown names raise :class:`ParameterError`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown problem '{name}'; known: {', '.join(REGISTRY)}") from None


def get(name: str, **params: Any) -> Problem:
    """Build the problem ``name`` with ``params`` overriding its defaults (validated)."""
    return problem_class(name).from_params(params)
