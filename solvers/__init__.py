"""Solvers: how problems are solved.  ``solvers.get(name, **params)`` builds one.

The registry below is the one place a solver is added: subclass :class:`~solvers.base.Solver`
(see its contract) and list the class in ``_CLASSES``, or, without editing the package, call
``solvers.register(cls)`` from a plug-in module named in ``$DSM_BENCH_PLUGINS`` (see
:func:`core.registry.load_plugins`).  Heavy optional dependencies are imported
inside a solver's methods, so listing solvers needs none of them.
"""

from __future__ import annotations

from core import Registry

from .base import Budget, Observables, Solver
from .crank_nicolson import CrankNicolson
from .dsm import DSM
from .pinn import Pinn
from .split_operator import SplitOperator
from .tvmc import TVMC

__all__ = ["get", "names", "solver_class", "register", "Solver", "Observables", "Budget"]

_CLASSES: tuple[type[Solver], ...] = (CrankNicolson, SplitOperator, DSM, Pinn, TVMC)
_REGISTRY = Registry("solver", _CLASSES, lambda cls, params: cls(params), base=Solver)
REGISTRY: dict[str, type[Solver]] = _REGISTRY.classes
names = _REGISTRY.names
solver_class = _REGISTRY.cls
get = _REGISTRY.get
register = _REGISTRY.register
