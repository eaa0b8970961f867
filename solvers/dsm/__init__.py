"""Deep Stochastic Mechanics (Orlova et al., ICML 2024): the solver ``dsm``.

Modules: :mod:`.networks` (the two velocity networks, stacked), :mod:`.equations` (residuals of
the stochastic-mechanics equations in every derivative mode), :mod:`.sampling` (trajectories and
training points), :mod:`.solver` (training, checkpoints, evaluation).
"""

from .solver import DSM

__all__ = ["DSM"]
