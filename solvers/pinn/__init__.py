"""The physics-informed network baseline: the solver ``pinn`` (DeepXDE, PyTorch backend).

Modules: :mod:`.solver` (the solver class, in the harness's process), :mod:`.worker` (training
with DeepXDE, in a process of its own: :mod:`solvers.isolated`), :mod:`.physics` (the ansatz,
the network and the Schrödinger residual in plain torch, shared by both), :mod:`.observe`
(observables of psi by quadrature).
"""

from .solver import Pinn

__all__ = ["Pinn"]
