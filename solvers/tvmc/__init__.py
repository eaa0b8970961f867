"""t-VMC (time-dependent variational Monte Carlo) on NetKet: the original paper's other baseline,
the solver ``tvmc``.

Modules: :mod:`.solver` (the solver class, in the harness's process), :mod:`.worker` (the
process that runs JAX and NetKet: :mod:`solvers.isolated`), :mod:`.engine` (the numerics: TDVP,
sampling, observables) and :mod:`.ansatz` (the variational forms).  Only the worker imports the
engine, so listing solvers needs neither JAX nor NetKet.
"""

from .solver import TVMC

__all__ = ["TVMC"]
