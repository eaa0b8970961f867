"""Grid settings of the two engines, how they are chosen from a problem, and what they cost.

Both engines put a uniform grid on the box of the problem's :class:`~problems.base.GridHint`
(a box outside which |psi|^2 stays negligible on [0, T]) and take a time step from the energy
spread, dt = phase_step * hbar / e_spread (the step that turns the relative phase of the extreme
occupied energies by ``phase_step`` radians).  They differ in what a point means:

* Crank–Nicolson (:class:`GridSettings`): ``n`` interior points per coordinate with Dirichlet
  walls one spacing beyond the last ones, spacing (hi - lo) / (n + 1).
* split-operator (:class:`SplitSettings`): ``n`` points of a periodic box, spacing
  (hi - lo) / n, point i at lo + i h.  The FFT sees wavenumbers up to the Nyquist pi / h.

Memory estimates are fitted to peaks measured in fresh processes (``VmHWM`` after resetting it;
the script is ``tests/grid_memory_probe.py``), as bytes per grid point plus fixed allowances, and
checked not to fall below measured peaks by a slow test (``tests/test_grid_memory.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.fft

__all__ = ["STENCILS", "GridSettings", "SplitSettings", "plan_grid", "plan_split_grid",
           "grid_memory_bytes", "MIN_POINTS", "MAX_STEP_FRACTION", "WALL_BAND"]

#: Central second-derivative stencils: coefficient of offset 0, 1, 2, ... (times 1/h^2).
STENCILS: dict[int, tuple[float, ...]] = {
    2: (-2.0, 1.0),
    4: (-5 / 2, 4 / 3, -1 / 12),
    6: (-49 / 18, 3 / 2, -3 / 20, 1 / 90),
    8: (-205 / 72, 8 / 5, -1 / 5, 8 / 315, -1 / 560),
}

#: Orders of the split-operator time integrator (2: Strang; 4: Yoshida's triple jump).
SPLIT_ORDERS = (2, 4)

#: Automatic grids never have fewer points per coordinate than this.
MIN_POINTS = 32
#: Automatic steps never exceed this fraction of T.
MAX_STEP_FRACTION = 0.02
#: The outer fraction of the box on each side whose probability is reported as "wall mass".
WALL_BAND = 0.05

# --- memory models (bytes = per_point * n^d + allowances), fitted to peaks that
# tests/grid_memory_probe.py measured in fresh processes (VmHWM after resetting it), 2 CPU cores:
#   Crank–Nicolson, BiCGSTAB, order 8: 201-209 B/pt over 3-6 steps (d=2 n=1024, d=3 n=97..257,
#   d=4 n=33), 240-249 B/pt over 20-30 steps with 11 observations (d=2 n=1024, d=3 n=129, 201)
#   (the growth is the allocator's: freed BiCGSTAB vectors are not all returned at once).
#   split-operator: order 2 static 84-105 B/pt, order 4 static 113-129 B/pt, time-dependent
#   order 2 / 4 81-97 / 98-113 B/pt (d=2 n=1024, d=3 n=128, d=4 n=48), 129 B/pt at order 4
#   over 20 steps (d=3 n=128).
#: Crank–Nicolson with BiCGSTAB: psi, the previous step, the extrapolated guess, BiCGSTAB's work
#: vectors and the matrix-free operator's buffers (complex), the potential (real).
CN_BICGSTAB_BYTES_PER_POINT = 280
#: Crank–Nicolson with a direct factorisation: the vectors (the banded bound on the LU fill is
#: added separately; measured 1390 B/pt against an estimate of 4360 B/pt at d=1, n=20000).
CN_SPLU_BYTES_PER_POINT = 120
#: Split-operator: psi and the FFT working in place, the energy's transformed copy (complex),
#: the potential (real) and slack for transients ...
SPLIT_BASE_BYTES_PER_POINT = 56
#: ... plus one complex array per drift phase and per kick (see :func:`_split_arrays`).
SPLIT_ARRAY_BYTES = 16
#: Fixed allowance for Python objects, FFT plans and the observables (bytes) ...
FIXED_BYTES = 64 * 2**20
#: ... and for the temporaries of one slab of a function evaluated on the grid, per slab point
#: and per d^2 (a pair potential makes (d, d) arrays per point).
SLAB_BYTES_PER_D2 = 40


def _box(problem, box_scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The hint's box, widened (or narrowed) by ``box_scale`` about its centre."""
    hint = problem.grid_hint()
    centre = [(a + b) / 2 for a, b in zip(hint.lo, hint.hi)]
    half = [box_scale * (b - a) / 2 for a, b in zip(hint.lo, hint.hi)]
    return (tuple(c - h for c, h in zip(centre, half)),
            tuple(c + h for c, h in zip(centre, half)))


def _step(problem, phase_step: float, resolution: float, dt: float) -> float:
    if dt > 0:
        return float(dt)
    dt = phase_step * problem.hbar / (problem.grid_hint().e_spread * resolution)
    return float(min(dt, problem.t_final * MAX_STEP_FRACTION))


@dataclass(frozen=True)
class GridSettings:
    """A Crank–Nicolson grid: box, interior points per coordinate, target step, stencil order."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: int
    dt: float
    order: int = 6
    linear_solver: str = "auto"
    rtol: float = 1e-10

    method: ClassVar[str] = "crank_nicolson"

    @property
    def d(self) -> int:
        return len(self.lo)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple((b - a) / (self.n + 1) for a, b in zip(self.lo, self.hi))

    def axes(self) -> list[np.ndarray]:
        """The interior points of each coordinate (the walls at lo and hi are excluded)."""
        return [np.linspace(a, b, self.n + 2)[1:-1] for a, b in zip(self.lo, self.hi)]

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

    def identity(self) -> dict[str, Any]:
        """What determines the solution (cache keys): every setting."""
        return dict(self.as_dict(), method=self.method)


@dataclass(frozen=True)
class SplitSettings:
    """A split-operator grid: periodic box, points per coordinate, target step, splitting order,
    and the FFT's threads (``workers``; it does not change the solution)."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: int
    dt: float
    order: int = 2
    workers: int = 1

    method: ClassVar[str] = "split_operator"

    @property
    def d(self) -> int:
        return len(self.lo)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple((b - a) / self.n for a, b in zip(self.lo, self.hi))

    def axes(self) -> list[np.ndarray]:
        """The points of each coordinate: lo + i h, i = 0 .. n - 1 (hi is lo's periodic image)."""
        return [a + h * np.arange(self.n) for a, h in zip(self.lo, self.spacing)]

    def wavenumbers(self) -> list[np.ndarray]:
        """The FFT's wavenumbers of each coordinate (scipy.fft ordering)."""
        return [2 * np.pi * scipy.fft.fftfreq(self.n, h) for h in self.spacing]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lo"], out["hi"] = list(self.lo), list(self.hi)
        out["spacing"] = list(self.spacing)
        out["k_nyquist"] = math.pi / max(self.spacing)
        return out

    def identity(self) -> dict[str, Any]:
        """What determines the solution (cache keys): everything but the FFT's thread count."""
        out = self.as_dict()
        out.pop("workers")
        return dict(out, method=self.method)


def plan_grid(problem, *, points_per_wavelength: float, phase_step: float, order: int,
              n: int = 0, dt: float = 0.0, resolution: float = 1.0, box_scale: float = 1.0,
              linear_solver: str = "auto", rtol: float = 1e-10) -> GridSettings:
    """Choose a Crank–Nicolson grid from the problem's physical scales.

    The spacing puts ``points_per_wavelength`` points on the shortest wavelength 2 pi / k_max; the
    step turns the energy spread's phase by ``phase_step`` radians (dt = phase_step hbar / dE).
    ``resolution`` refines both (2 halves the spacing and the step); explicit ``n`` / ``dt``
    override the rules.  ``box_scale`` widens the hint's box about its centre.
    """
    lo, hi = _box(problem, box_scale)
    if n <= 0:
        width = max(b - a for a, b in zip(lo, hi))
        spacing = 2 * math.pi / (problem.grid_hint().k_max * points_per_wavelength * resolution)
        n = max(MIN_POINTS, int(math.ceil(width / spacing)))
        if n % 64 == 0:
            # rows of 64k complex numbers are 4 KiB apart: strided stencil passes then thrash the
            # cache (measured 3x slower at n=256 than at 255 or 257)
            n += 1
    return GridSettings(lo=lo, hi=hi, n=int(n), dt=_step(problem, phase_step, resolution, dt),
                        order=order, linear_solver=linear_solver, rtol=rtol)


def plan_split_grid(problem, *, points_per_wavelength: float, phase_step: float, order: int,
                    n: int = 0, dt: float = 0.0, resolution: float = 1.0, box_scale: float = 1.0,
                    workers: int = 1) -> SplitSettings:
    """Choose a split-operator grid from the problem's physical scales.

    Spectral accuracy needs the Nyquist wavenumber pi / h above the hint's k_max:
    ``points_per_wavelength`` points on 2 pi / k_max (2 is Nyquist exactly; more is a safety
    margin for the tails of the spectrum), rounded up to a size the FFT factorises well
    (:func:`scipy.fft.next_fast_len`).  The step follows the same energy-spread rule as
    Crank–Nicolson (``phase_step`` radians); ``resolution``, ``n``, ``dt`` and ``box_scale`` mean
    what they mean in :func:`plan_grid`.
    """
    if order not in SPLIT_ORDERS:
        raise ValueError(f"split-operator order must be one of {SPLIT_ORDERS}, got {order}")
    lo, hi = _box(problem, box_scale)
    if n <= 0:
        width = max(b - a for a, b in zip(lo, hi))
        spacing = 2 * math.pi / (problem.grid_hint().k_max * points_per_wavelength * resolution)
        n = scipy.fft.next_fast_len(max(MIN_POINTS, int(math.ceil(width / spacing))))
    return SplitSettings(lo=lo, hi=hi, n=int(n), dt=_step(problem, phase_step, resolution, dt),
                         order=order, workers=int(workers))


def _split_arrays(settings: SplitSettings, static: bool) -> int:
    """Complex arrays of N points the split-operator engine holds besides psi: one drift phase
    per distinct sub-step size, one kick per distinct weight (static V), or the kick's two
    transients (V changing in time)."""
    drifts = 1 if settings.order == 2 else 2
    kicks = (2 if settings.order == 2 else 3) if static else 2
    return drifts + kicks


def grid_memory_bytes(settings: GridSettings | SplitSettings, static_potential: bool = True) -> int:
    """An estimate, calibrated against measured peaks (see the constants above), of the memory
    one propagation adds to the interpreter's own (bytes)."""
    from .observe import SLAB_POINTS

    N = settings.n ** settings.d
    fixed = FIXED_BYTES + SLAB_POINTS * SLAB_BYTES_PER_D2 * settings.d ** 2
    if isinstance(settings, SplitSettings):
        per = SPLIT_BASE_BYTES_PER_POINT + SPLIT_ARRAY_BYTES * _split_arrays(settings,
                                                                             static_potential)
        return int(per * N + fixed)
    if settings.solver_kind() == "splu":
        half_width = len(STENCILS[settings.order]) - 1
        n, d = settings.n, settings.d
        # banded bound on the factors' fill, plus the matrices themselves (complex + index)
        fill = 2 * N * half_width * n ** (d - 1) + 4 * N * (2 * half_width * d + 1)
        return int(CN_SPLU_BYTES_PER_POINT * N + 20 * fill + fixed)
    return int(CN_BICGSTAB_BYTES_PER_POINT * N + fixed)
