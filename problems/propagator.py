"""Crank–Nicolson propagation of the Schrödinger equation on a uniform grid (d = 1, 2, 3).

This engine serves two masters: the ``crank_nicolson`` solver (the classical method under test)
and the cached grid references of problems without a closed form.  It lives in ``problems``
because a problem may not import a solver.

Discretisation
--------------
A uniform grid of ``n`` interior points per coordinate spans the box of the problem's
:class:`~problems.base.GridHint`, with Dirichlet walls (psi = 0) one spacing beyond the last
points.  The Laplacian is the centred finite-difference stencil of order 2, 4, 6 or 8 along each
axis (points past a wall count as zero).  In time, Crank–Nicolson

    (I + i dt/(2 hbar) H) psi^{n+1} = (I - i dt/(2 hbar) H) psi^n

is unitary and second order.  H is shifted by its initial expectation E0, a global phase that
leaves every observable unchanged but shrinks the phases Crank–Nicolson has to follow, and with
them its time error.

Linear solves
-------------
Writing A = I + i tau H (tau = dt / 2 hbar), one step is psi^{n+1} = 2 chi - psi^n with
A chi = psi^n, so each step costs one solve and no product with I - i tau H.  In 1-D the banded
matrix A is factorised once with ``scipy.sparse.linalg.splu`` and reused for every step.  In 2-D
and 3-D a direct factorisation fills in badly (measured: 430 MB and 66 ms per solve for 300^2
points; 4.6 GB and 270 s to factorise 40^3), while A is close to the identity (||tau H|| ~ 0.1
at the default step), so ``scipy.sparse.linalg.bicgstab``, started from chi extrapolated from the
last two steps, converges in about one iteration, applying H matrix-free with ``scipy.ndimage``
stencils.  ``linear_solver="splu"`` forces the direct path in any dimension, for small grids.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = [
    "STENCILS", "GridSettings", "GridSolution", "plan_grid", "grid_memory_bytes", "propagate",
    "cdf_from_density",
]

#: Central second-derivative stencils: coefficient of offset 0, 1, 2, ... (times 1/h^2).
STENCILS: dict[int, tuple[float, ...]] = {
    2: (-2.0, 1.0),
    4: (-5 / 2, 4 / 3, -1 / 12),
    6: (-49 / 18, 3 / 2, -3 / 20, 1 / 90),
    8: (-205 / 72, 8 / 5, -1 / 5, 8 / 315, -1 / 560),
}

#: Bumped when a change here alters computed solutions, so that cached references are redone.
ENGINE_VERSION = 2

#: Automatic grids never have fewer points per coordinate than this.
MIN_POINTS = 32
#: Automatic steps never exceed this fraction of T.
MAX_STEP_FRACTION = 0.02

#: The outer fraction of the box on each side whose probability is reported as "wall mass".
WALL_BAND = 0.05


@dataclass(frozen=True)
class GridSettings:
    """A concrete grid: box, points per coordinate, target time step and stencil order."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: int
    dt: float
    order: int = 6
    linear_solver: str = "auto"
    rtol: float = 1e-10

    @property
    def d(self) -> int:
        return len(self.lo)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple((b - a) / (self.n + 1) for a, b in zip(self.lo, self.hi))

    def solver_kind(self) -> str:
        if self.linear_solver != "auto":
            return self.linear_solver
        return "splu" if self.d == 1 else "bicgstab"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lo"], out["hi"] = list(self.lo), list(self.hi)
        out["spacing"] = list(self.spacing)
        out["linear_solver"] = self.solver_kind()
        return out


def plan_grid(problem, *, points_per_wavelength: float, phase_step: float, order: int,
              n: int = 0, dt: float = 0.0, resolution: float = 1.0, box_scale: float = 1.0,
              linear_solver: str = "auto", rtol: float = 1e-10) -> GridSettings:
    """Choose a grid from the problem's physical scales.

    The spacing puts ``points_per_wavelength`` points on the shortest wavelength 2 pi / k_max; the
    step turns the energy spread's phase by ``phase_step`` radians (dt = phase_step hbar / dE).
    ``resolution`` refines both (2 halves the spacing and the step); explicit ``n`` / ``dt``
    override the rules.  ``box_scale`` widens the hint's box about its centre.
    """
    hint = problem.grid_hint()
    centre = [(a + b) / 2 for a, b in zip(hint.lo, hint.hi)]
    half = [box_scale * (b - a) / 2 for a, b in zip(hint.lo, hint.hi)]
    lo = tuple(c - h for c, h in zip(centre, half))
    hi = tuple(c + h for c, h in zip(centre, half))
    if n <= 0:
        width = max(b - a for a, b in zip(lo, hi))
        spacing = 2 * math.pi / (hint.k_max * points_per_wavelength * resolution)
        n = max(MIN_POINTS, int(math.ceil(width / spacing)))
        if n % 64 == 0:
            # rows of 64k complex numbers are 4 KiB apart: strided stencil passes then thrash the
            # cache (measured 3x slower at n=256 than at 255 or 257)
            n += 1
    if dt <= 0:
        dt = phase_step * problem.hbar / (hint.e_spread * resolution)
        dt = min(dt, problem.t_final * MAX_STEP_FRACTION)
    return GridSettings(lo=lo, hi=hi, n=int(n), dt=float(dt), order=order,
                        linear_solver=linear_solver, rtol=rtol)


def grid_memory_bytes(settings: GridSettings) -> int:
    """A conservative estimate of the peak memory of :func:`propagate`."""
    d, n = settings.d, settings.n
    N = n**d
    # wave function, right-hand side, BiCGSTAB's work vectors, stencil buffers (complex),
    # potential, centre-of-mass coordinate and the meshgrid built once (real)
    vectors = N * (16 * 12 + 8 * (d + 3))
    if settings.solver_kind() == "splu":
        half_width = len(STENCILS[settings.order]) - 1
        # banded bound on the factors' fill, plus the matrices themselves
        fill = 2 * N * half_width * n ** (d - 1) + 4 * N * (2 * half_width * d + 1)
        vectors += fill * (16 + 4)
    return int(vectors)


@dataclass
class GridSolution:
    """Observables of a grid solution at the requested times.

    ``marginal_x[i]`` are coordinate ``i``'s grid points, ``marginal_density[t, i]`` its marginal
    density there.  ``pair_x`` / ``pair_density[t]`` are the same for the pair distance
    x_0 - x_1 (empty when d = 1).  ``norm`` is the discrete integral of |psi|^2 (1 at t=0), ``wall_mass`` the
    probability within the outer 5 % of the box (summed over coordinates), ``energy`` <H>.
    """

    times: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    com_var: np.ndarray
    energy: np.ndarray
    norm: np.ndarray
    wall_mass: np.ndarray
    marginal_x: np.ndarray
    marginal_density: np.ndarray
    pair_x: np.ndarray
    pair_density: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("times", "mean", "var", "com_var", "energy", "norm", "wall_mass", "marginal_x",
              "marginal_density", "pair_x", "pair_density")

    def marginal_cdf(self, coord: int, x: np.ndarray) -> np.ndarray:
        """The marginal CDF of coordinate ``coord`` at points ``x``, shape (T, len(x))."""
        return cdf_from_density(self.marginal_x[coord], self.marginal_density[:, coord], x)

    def pair_cdf(self, z: np.ndarray) -> np.ndarray | None:
        """The CDF of x_0 - x_1 at points ``z``, shape (T, len(z)); None when d = 1."""
        if self.pair_x.size == 0:
            return None
        return cdf_from_density(self.pair_x, self.pair_density, z)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.ARRAYS}


def cdf_from_density(grid: np.ndarray, density: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CDF at ``x`` of densities sampled on a uniform ``grid`` (rows of ``density``).

    Each grid value stands for its cell of width h, so the CDF rises linearly across a cell; the
    result is exact for bin integrals of piecewise-constant densities and is normalised to 1.
    """
    grid = np.asarray(grid, dtype=float)
    h = grid[1] - grid[0]
    edges = np.concatenate([grid - h / 2, [grid[-1] + h / 2]])
    density = np.atleast_2d(density)
    cum = np.concatenate([np.zeros((density.shape[0], 1)), np.cumsum(density, axis=1) * h], axis=1)
    cum /= cum[:, -1:]
    return np.stack([np.interp(x, edges, row, left=0.0, right=1.0) for row in cum])


class _Hamiltonian:
    """H = -(hbar^2 / 2m) Laplacian + V - E0 on the grid, applied matrix-free or as a matrix."""

    def __init__(self, settings: GridSettings, hbar: float, mass: float, potential: np.ndarray):
        self.settings = settings
        self.shape = potential.shape
        self.kinetic = -(hbar * hbar) / (2 * mass)
        self.potential = potential
        self.shift = 0.0
        self._shifted = potential
        coeffs = STENCILS[settings.order]
        full = np.array(coeffs[:0:-1] + coeffs)  # symmetric stencil, offsets -r..r
        self.weights = [self.kinetic * full / h**2 for h in settings.spacing]

    def set_shift(self, energy: float) -> None:
        """Subtract ``energy`` from H (a global phase for the solution)."""
        self.shift = energy
        self._shifted = self.potential - energy

    def apply(self, psi: np.ndarray) -> np.ndarray:
        """H psi for psi of the grid's shape (complex)."""
        out = self._shifted * psi
        view = psi.view(np.float64).reshape(psi.shape + (2,))
        acc = out.view(np.float64).reshape(out.shape + (2,))
        tmp = np.empty_like(view)
        for axis, w in enumerate(self.weights):
            ndi.correlate1d(view, w, axis=axis, mode="constant", cval=0.0, output=tmp)
            acc += tmp
        return out

    def plus_i_tau(self, tau: float) -> Callable[[np.ndarray], np.ndarray]:
        """The map v -> (I + i tau H) v on flat vectors, fused and with reused buffers.

        Three times faster than composing it from :meth:`apply`, and it is the whole cost of a
        Krylov iteration.
        """
        shape = self.shape
        diag = 1.0 + 1j * tau * self._shifted
        weights = [tau * w for w in self.weights]
        acc = np.empty(shape + (2,))
        tmp = np.empty(shape + (2,))

        def matvec(v: np.ndarray) -> np.ndarray:
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

    def matrix(self) -> sp.csr_matrix:
        """H as a sparse matrix (for the direct solver)."""
        n, d = self.settings.n, len(self.shape)
        r = len(self.weights[0]) // 2
        eye = sp.identity(n, format="csr")
        total = sp.diags(self._shifted.ravel())
        for axis, w in enumerate(self.weights):
            d2 = sp.diags([np.full(n - abs(k), w[k + r]) for k in range(-r, r + 1)],
                          list(range(-r, r + 1)))
            factors = [eye] * d
            factors[axis] = d2
            term = factors[0]
            for f in factors[1:]:
                term = sp.kron(term, f)
            total = total + term
        return total.tocsr()


class _Stepper:
    """Advances psi by k Crank–Nicolson steps of size dt, reusing factorisations."""

    def __init__(self, ham: _Hamiltonian, hbar: float, kind: str, rtol: float):
        self.ham, self.hbar, self.kind, self.rtol = ham, hbar, kind, rtol
        self._lu: dict[float, Any] = {}
        self._matrix = ham.matrix() if kind == "splu" else None
        self.krylov_iterations = 0
        self.steps = 0

    def _factor(self, tau: float):
        if tau not in self._lu:
            n = self._matrix.shape[0]
            a = (sp.identity(n, format="csc") + 1j * tau * self._matrix).tocsc()
            self._lu[tau] = spla.splu(a)
        return self._lu[tau]

    def advance(self, psi: np.ndarray, dt: float, k: int, tick: Callable[[int], None]) -> np.ndarray:
        # One step is psi+ = A^{-1} (2I - A) psi = 2 chi - psi with A chi = psi, A = I + i tau H:
        # one solve per step and no product with (I - i tau H).
        tau = dt / (2 * self.hbar)
        shape = psi.shape
        if self.kind == "splu":
            lu = self._factor(tau)
            flat = psi.ravel()
            for _ in range(k):
                flat = 2 * lu.solve(flat) - flat
                tick(1)
            self.steps += k
            return flat.reshape(shape)
        N = psi.size
        op = spla.LinearOperator((N, N), matvec=self.ham.plus_i_tau(tau), dtype=np.complex128)
        counter = [0]

        def count(_):
            counter[0] += 1

        flat, prev = psi.ravel(), None
        for _ in range(k):
            # chi is the midpoint (psi^n + psi^{n+1}) / 2: extrapolate it from the last step
            guess = flat if prev is None else 1.5 * flat - 0.5 * prev
            chi, status = spla.bicgstab(op, flat, x0=guess, rtol=self.rtol, atol=0.0,
                                        maxiter=200, callback=count)
            if status != 0:
                raise RuntimeError(
                    f"BiCGSTAB did not converge at step {self.steps + 1} (status {status}); "
                    "reduce dt or use linear_solver=splu on a small grid")
            prev, flat = flat, 2 * chi - flat
            self.steps += 1
            tick(1)
        self.krylov_iterations += counter[0]
        return flat.reshape(shape)


def propagate(problem, settings: GridSettings, times: np.ndarray,
              progress: bool | None = None, time_limit_s: float | None = None) -> GridSolution:
    """Solve ``problem`` on ``settings``'s grid and return observables at ``times``.

    ``times`` must be non-decreasing and start at or after 0.  Each interval between consecutive
    times is split into equal steps no longer than ``settings.dt``.  ``progress`` shows a tqdm
    bar (None: only on a terminal).  ``time_limit_s`` stops with ``TimeoutError``.
    """
    from tqdm.auto import tqdm

    if not problem.static_potential:
        raise ValueError("Crank–Nicolson here factorises once, so V must not depend on time")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or len(times) == 0 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError("times must be a non-empty, non-decreasing 1-D array starting at >= 0")
    d, n = settings.d, settings.n
    if d != problem.d:
        raise ValueError(f"grid has {d} coordinates but the problem has d={problem.d}")
    if settings.order not in STENCILS:
        raise ValueError(f"stencil order must be one of {sorted(STENCILS)}, got {settings.order}")
    started = time.perf_counter()

    axes = [np.linspace(a, b, n + 2)[1:-1] for a, b in zip(settings.lo, settings.hi)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    potential = np.asarray(problem.potential(mesh), dtype=float)
    psi = np.asarray(problem.psi0(mesh), dtype=np.complex128)
    com = mesh.mean(axis=-1)
    del mesh
    cell = float(np.prod(settings.spacing))
    norm0 = float(np.sum(np.abs(psi) ** 2) * cell)
    psi /= math.sqrt(norm0)

    ham = _Hamiltonian(settings, problem.hbar, problem.mass, potential)
    ham.set_shift(float(np.real(np.vdot(psi, ham.apply(psi))) * cell))
    stepper = _Stepper(ham, problem.hbar, settings.solver_kind(), settings.rtol)

    band = [max(1, int(round(WALL_BAND * n)))] * d
    T = len(times)
    out = {k: np.empty(T) for k in ("com_var", "energy", "norm", "wall_mass")}
    mean, var = np.empty((T, d)), np.empty((T, d))
    dens = np.empty((T, d, n))
    # pair distance x_0 - x_1: on equal spacings the differences are (lo0 - lo1) + (i - j) h
    pairs = d >= 2 and math.isclose(settings.spacing[0], settings.spacing[1], rel_tol=1e-12)
    if pairs:
        h = settings.spacing[0]
        pair_x = (settings.lo[0] - settings.lo[1]) + h * np.arange(-(n - 1), n)
        diag = (np.arange(n)[:, None] - np.arange(n)[None, :] + n - 1).ravel()
        pair_dens = np.empty((T, 2 * n - 1))
    else:
        pair_x, pair_dens = np.empty(0), np.empty((T, 0))

    def observe(j: int, psi: np.ndarray) -> None:
        rho = np.abs(psi) ** 2 * cell
        norm = float(rho.sum())
        rho /= norm
        out["norm"][j] = norm
        out["energy"][j] = float(np.real(np.vdot(psi, ham.apply(psi)))) * cell / norm + ham.shift
        wall = 0.0
        for i in range(d):
            others = tuple(a for a in range(d) if a != i)
            marg = rho.sum(axis=others) if others else rho
            dens[j, i] = marg / settings.spacing[i]
            mean[j, i] = float(marg @ axes[i])
            var[j, i] = float(marg @ (axes[i] - mean[j, i]) ** 2)
            wall += float(marg[: band[i]].sum() + marg[-band[i]:].sum())
        out["wall_mass"][j] = wall
        m1 = float(np.sum(rho * com))
        out["com_var"][j] = float(np.sum(rho * (com - m1) ** 2))
        if pairs:
            joint = rho.sum(axis=tuple(range(2, d))) if d > 2 else rho
            pair_dens[j] = np.bincount(diag, weights=joint.ravel(), minlength=2 * n - 1) / h

    # steps per interval; equal intervals share one step size and so one factorisation
    plan = []
    t_prev = 0.0
    for t in times:
        gap = t - t_prev
        k = int(math.ceil(gap / settings.dt - 1e-9)) if gap > 0 else 0
        plan.append((k, gap / k if k else 0.0))
        t_prev = t
    total = sum(k for k, _ in plan)
    bar = tqdm(total=total, desc=f"crank-nicolson {d}d n={n}", unit="step", leave=False,
               disable=(not progress) if progress is not None else None)
    try:
        for j, (k, dt) in enumerate(plan):
            if k:
                psi = stepper.advance(psi, dt, k, bar.update)
            if time_limit_s is not None and time.perf_counter() - started > time_limit_s:
                raise TimeoutError(f"Crank–Nicolson exceeded its time limit of {time_limit_s:g} s "
                                   f"at t={times[j]:.4g}")
            observe(j, psi)
    finally:
        bar.close()

    info = {
        "grid": settings.as_dict(),
        "steps": stepper.steps,
        "initial_norm_before_normalising": norm0,
        "energy_shift": ham.shift,
        "max_wall_mass": float(out["wall_mass"].max()),
        "max_norm_drift": float(np.max(np.abs(out["norm"] - 1.0))),
    }
    if stepper.kind == "bicgstab":
        info["krylov_iterations_per_step"] = stepper.krylov_iterations / max(stepper.steps, 1)
    return GridSolution(times=times, mean=mean, var=var, marginal_x=np.stack(axes),
                        marginal_density=dens, pair_x=pair_x, pair_density=pair_dens, info=info,
                        **out)
