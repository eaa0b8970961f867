"""Problems: what is solved.  ``problems.get(name, **params)`` builds a validated problem.

The registry below is the one place a problem is added: write a frozen dataclass subclassing
:class:`~problems.base.Problem` and list it in ``_CLASSES``, or, without editing the package, call
``problems.register(cls)`` from a plug-in module named in ``$DSM_BENCH_PLUGINS`` (see
:func:`core.registry.load_plugins`).
"""

from __future__ import annotations

from .base import GridHint, Invariants, Problem, Reference
from .bosons import Bosons
from .double_well import DoubleWell
from .driven import HarmonicDriven
from .packet import GaussianPacket, Harmonic1D, Harmonic1DMoving, HarmonicND, Singular1D
from .superposition import Superposition
from core import ParameterError, ParamSpec, PluginError, Registry

__all__ = ["get", "names", "problem_class", "register", "Problem", "Reference", "GridHint",
           "Invariants", "ParameterError", "ParamSpec", "PluginError", "GaussianPacket", "Bosons",
           "Superposition", "HarmonicDriven", "DoubleWell"]

_CLASSES: tuple[type[Problem], ...] = (Harmonic1D, Harmonic1DMoving, HarmonicND, Singular1D, Bosons,
                                       Superposition, HarmonicDriven, DoubleWell)
_REGISTRY = Registry("problem", _CLASSES, lambda cls, params: cls.from_params(params), base=Problem)
REGISTRY: dict[str, type[Problem]] = _REGISTRY.classes
names = _REGISTRY.names
problem_class = _REGISTRY.cls
get = _REGISTRY.get
register = _REGISTRY.register
