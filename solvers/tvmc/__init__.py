"""t-VMC (time-dependent variational Monte Carlo) on NetKet: the original paper's other baseline.

:mod:`solvers.tvmc.engine` holds the numerics; it imports JAX and NetKet and therefore runs only
in a process of its own.  Nothing here imports it (nor JAX), so listing solvers needs neither.
"""
