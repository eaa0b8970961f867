"""Crank–Nicolson propagation of the Schrödinger equation on a uniform grid (any d; d <= 3 in
practice, see :func:`~problems.grid.settings.grid_memory_bytes`).

Discretisation
--------------
A uniform grid of ``n`` interior points per coordinate spans the box of the problem's
:class:`~problems.base.GridHint`, with Dirichlet walls (psi = 0) one spacing beyond the last
points.  The Laplacian is the centred finite-difference stencil of order 2, 4, 6 or 8 along each
axis (points past a wall count as zero).  In time, Crank–Nicolson

    (I + i dt/(2 hbar) H(t + dt/2)) psi^{n+1} = (I - i dt/(2 hbar) H(t + dt/2)) psi^n

is unitary and second order; with a time-dependent potential, H at the step's midpoint keeps the
second order (the scheme is the implicit midpoint rule, which is symmetric).  H is shifted by its
initial expectation E0, a global phase that leaves every observable unchanged but shrinks the
phases Crank–Nicolson has to follow, and with them its time error.

Linear solves
-------------
Writing A = I + i tau H (tau = dt / 2 hbar), one step is psi^{n+1} = 2 chi - psi^n with
A chi = psi^n, so each step costs one solve and no product with I - i tau H.  In 1-D the banded
matrix A is factorised with ``scipy.sparse.linalg.splu`` (once for a static potential; at every
step, at the midpoint time, for a time-dependent one: a banded 1-D factorisation costs about as
much as a solve).  In 2-D and 3-D a direct factorisation fills in badly (measured: 430 MB and
66 ms per solve for 300^2 points; 4.6 GB and 270 s to factorise 40^3), while A is close to the
identity (||tau H|| ~ 0.1 at the default step), so ``scipy.sparse.linalg.bicgstab``, started from
chi extrapolated from the last two steps, converges in about one iteration, applying H
matrix-free with ``scipy.ndimage`` stencils; a time-dependent potential only changes the
operator's diagonal.  ``linear_solver="splu"`` forces the direct path in any dimension, for small
grids.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .observe import GridSolution, Observer, grid_values
from .march import check_times, march
from .settings import STENCILS, GridSettings

__all__ = ["ENGINE_VERSION", "propagate"]

_UNSET = object()

#: Bumped when a change here alters computed solutions, so that cached references are redone.
ENGINE_VERSION = 2


class _Hamiltonian:
    """H = -(hbar^2 / 2m) Laplacian + V - E0 on the grid, applied matrix-free or as a matrix."""

    def __init__(self, settings: GridSettings, hbar: float, mass: float, potential: np.ndarray):
        self.settings = settings
        self.shape = potential.shape
        self.kinetic = -(hbar * hbar) / (2 * mass)
        self.potential = potential
        self.shift = 0.0
        coeffs = STENCILS[settings.order]
        full = np.array(coeffs[:0:-1] + coeffs)  # symmetric stencil, offsets -r..r
        self.weights = [self.kinetic * full / h**2 for h in settings.spacing]
        self._kinetic_matrix: sp.csr_matrix | None = None

    def kinetic_energy(self, psi: np.ndarray, cell: float) -> float:
        """<psi|T|psi> for the finite-difference T (sum times the cell volume)."""
        view = psi.view(np.float64).reshape(psi.shape + (2,))
        tmp = np.empty_like(view)
        total = 0.0
        for axis, w in enumerate(self.weights):
            ndi.correlate1d(view, w, axis=axis, mode="constant", cval=0.0, output=tmp)
            # Re <psi, T psi> = sum re*Tre + im*Tim
            total += float(np.vdot(view.ravel(), tmp.ravel()))
        return total * cell

    def plus_i_tau(self, tau: float) -> Callable[[np.ndarray], np.ndarray]:
        """The map v -> (I + i tau H) v on flat vectors, fused and with reused buffers.

        Three times faster than composing it from separate products, and it is the whole cost
        of a Krylov iteration.  It reads :attr:`potential` at each call, so a time-dependent
        potential updated in place is picked up.
        """
        shape = self.shape
        weights = [tau * w for w in self.weights]
        acc = np.empty(shape + (2,))
        tmp = np.empty(shape + (2,))
        diag = np.empty(shape, dtype=np.complex128)
        state = {"version": _UNSET}

        def matvec(v: np.ndarray) -> np.ndarray:
            if state["version"] is not self._version:
                np.multiply(1j * tau, self.potential - self.shift, out=diag)
                np.add(diag, 1.0, out=diag)
                state["version"] = self._version
            v = np.ascontiguousarray(v).reshape(shape)
            view = v.view(np.float64).reshape(shape + (2,))
            out = diag * v
            ndi.correlate1d(view, weights[0], axis=0, mode="constant", output=acc)
            for axis in range(1, len(shape)):
                ndi.correlate1d(view, weights[axis], axis=axis, mode="constant", output=tmp)
                np.add(acc, tmp, out=acc)
            # out += i (K_re + i K_im): the real part loses K_im, the imaginary part gains K_re
            parts = out.view(np.float64).reshape(shape + (2,))
            parts[..., 0] -= acc[..., 1]
            parts[..., 1] += acc[..., 0]
            return out.ravel()

        return matvec

    #: A token that changes whenever :attr:`potential` or :attr:`shift` change.
    _version: object = None

    def potential_changed(self) -> None:
        self._version = object()

    def kinetic_matrix(self) -> sp.csr_matrix:
        """T as a sparse matrix (for the direct solver), built once."""
        if self._kinetic_matrix is None:
            n, d = self.settings.n, len(self.shape)
            r = len(self.weights[0]) // 2
            eye = sp.identity(n, format="csr")
            total = None
            for axis, w in enumerate(self.weights):
                d2 = sp.diags([np.full(n - abs(k), w[k + r]) for k in range(-r, r + 1)],
                              list(range(-r, r + 1)))
                factors = [eye] * d
                factors[axis] = d2
                term = factors[0]
                for f in factors[1:]:
                    term = sp.kron(term, f)
                total = term if total is None else total + term
            self._kinetic_matrix = total.tocsr()
        return self._kinetic_matrix

    def matrix(self) -> sp.csr_matrix:
        """H (shifted) as a sparse matrix, with the current potential."""
        return (self.kinetic_matrix() + sp.diags((self.potential - self.shift).ravel())).tocsr()


class _Stepper:
    """Advances psi by k Crank–Nicolson steps of size dt, reusing factorisations.

    ``update(t)`` (or None for a static potential) writes V(t) into the Hamiltonian's potential;
    it is called at each step's midpoint.
    """

    def __init__(self, ham: _Hamiltonian, hbar: float, kind: str, rtol: float,
                 update: Callable[[float], None] | None):
        self.ham, self.hbar, self.kind, self.rtol, self.update = ham, hbar, kind, rtol, update
        self._lu: dict[float, Any] = {}
        self.krylov_iterations = 0
        self.steps = 0
        self.factorisations = 0

    def _factor(self, tau: float):
        if self.update is not None or tau not in self._lu:
            a = (sp.identity(self.ham.potential.size, format="csc")
                 + 1j * tau * self.ham.matrix()).tocsc()
            if self.update is not None:
                self._lu.clear()  # V changed: old factors are stale
            self._lu[tau] = spla.splu(a)
            self.factorisations += 1
        return self._lu[tau]

    def advance(self, psi: np.ndarray, t0: float, dt: float, k: int,
                tick: Callable[[], None]) -> np.ndarray:
        # One step is psi+ = A^{-1} (2I - A) psi = 2 chi - psi with A chi = psi, A = I + i tau H:
        # one solve per step and no product with (I - i tau H).
        tau = dt / (2 * self.hbar)
        shape = psi.shape
        if self.kind == "splu":
            flat = psi.ravel()
            for i in range(k):
                if self.update is not None:
                    self.update(t0 + (i + 0.5) * dt)
                flat = 2 * self._factor(tau).solve(flat) - flat
                self.steps += 1
                tick()
            return flat.reshape(shape)
        N = psi.size
        op = spla.LinearOperator((N, N), matvec=self.ham.plus_i_tau(tau), dtype=np.complex128)
        counter = [0]

        def count(_):
            counter[0] += 1

        flat, prev = psi.ravel(), None
        for i in range(k):
            if self.update is not None:
                self.update(t0 + (i + 0.5) * dt)
            # chi is the midpoint (psi^n + psi^{n+1}) / 2: extrapolate it from the last step
            guess = flat if prev is None else 1.5 * flat - 0.5 * prev
            chi, status = spla.bicgstab(op, flat, x0=guess, rtol=self.rtol, atol=0.0,
                                        maxiter=200, callback=count)
            del guess
            if status != 0:
                raise RuntimeError(
                    f"BiCGSTAB did not converge at step {self.steps + 1} (status {status}); "
                    "reduce dt or use linear_solver=splu on a small grid")
            chi *= 2
            chi -= flat
            prev, flat = flat, chi
            self.steps += 1
            tick()
        self.krylov_iterations += counter[0]
        return flat.reshape(shape)


def propagate(problem, settings: GridSettings, times: np.ndarray,
              progress: bool | None = None, time_limit_s: float | None = None) -> GridSolution:
    """Solve ``problem`` on ``settings``'s grid and return observables at ``times``.

    ``times`` must be non-decreasing and start at or after 0.  Each interval between consecutive
    times is split into equal steps no longer than ``settings.dt``.  ``progress`` shows a tqdm
    bar (None: only on a terminal).  ``time_limit_s`` stops with ``TimeoutError`` (checked after
    every step).  A potential that depends on time (``problem.static_potential`` False) is
    evaluated at each step's midpoint.
    """
    times = check_times(times)
    d, n = settings.d, settings.n
    if d != problem.d:
        raise ValueError(f"grid has {d} coordinates but the problem has d={problem.d}")
    if settings.order not in STENCILS:
        raise ValueError(f"stencil order must be one of {sorted(STENCILS)}, got {settings.order}")
    started = time.perf_counter()
    static = problem.static_potential

    axes = settings.axes()
    cell = float(np.prod(settings.spacing))
    potential = grid_values(problem.potential, axes, float, t=0.0)
    psi = grid_values(problem.psi0, axes, np.complex128)
    norm0 = float(np.vdot(psi.ravel(), psi.ravel()).real * cell)
    psi /= math.sqrt(norm0)

    ham = _Hamiltonian(settings, problem.hbar, problem.mass, potential)
    rho_v = float(np.vdot(psi.ravel(), (potential * psi).ravel()).real) * cell
    ham.shift = ham.kinetic_energy(psi, cell) + rho_v
    ham.potential_changed()

    def update(t: float) -> None:
        grid_values(problem.potential, axes, float, out=ham.potential, t=float(t))
        ham.potential_changed()

    stepper = _Stepper(ham, problem.hbar, settings.solver_kind(), settings.rtol,
                       None if static else update)
    observer = Observer(axes, len(times))

    state = {"psi": psi}

    def advance(t_now: float, dt: float, k: int, tick) -> None:
        state["psi"] = stepper.advance(state["psi"], t_now, dt, k, tick)

    def observe(j: int, t: float) -> None:
        if not static:
            update(t)  # the energy <H(t)> at the observation time
        observer.record(j, state["psi"], ham.kinetic_energy(state["psi"], cell), ham.potential)

    march(times, settings.dt, advance, observe, label=f"Crank–Nicolson {d}d n={n}",
          started=started, time_limit_s=time_limit_s, progress=progress)

    info = {
        "grid": settings.as_dict(),
        "method": settings.method,
        "engine_version": ENGINE_VERSION,
        "steps": stepper.steps,
        "initial_norm_before_normalising": norm0,
        "energy_shift": ham.shift,
        "static_potential": static,
        "seconds": time.perf_counter() - started,
    }
    if stepper.kind == "bicgstab":
        info["krylov_iterations_per_step"] = stepper.krylov_iterations / max(stepper.steps, 1)
    else:
        info["factorisations"] = stepper.factorisations
    return observer.solution(times, info)
