"""Time-dependent variational Monte Carlo (t-VMC) on NetKet: the original paper's third method.

A variational log psi_theta (ansatz ``hermite``, ``gaussian`` or ``neural``: see
:mod:`solvers.tvmc.ansatz`) starts at psi0 (a least-squares fit of log psi0) and follows the
time-dependent variational principle: at each stage of a Runge–Kutta step the quantum
geometric tensor S and the forces F are estimated from Metropolis samples of |psi_theta|^2 and
S theta' = -i F is solved with a regularised pseudo-inverse.  The numerics are
:mod:`solvers.tvmc.engine`'s; JAX and NetKet run only in the solver's own process
(:mod:`solvers.tvmc.worker`, on :mod:`solvers.isolated`'s machinery), never in the caller's.

Observables come from fresh Markov-chain samples of |psi_theta(., t)|^2 at every record time:
per-coordinate mean and variance, the centre-of-mass variance, <H> from local energies, and the
samples of coordinates 0 and 1 (marginal and pair-distance CDFs, W1).  Chain samples are
correlated, so ``effective_samples`` is, at each time, the smallest of NetKet's effective
sample sizes (variance over squared error of the mean, from the spread of chain means) of the
coordinates' means, of the centre of mass and of x_0^2; the harness's floors use it
(``sample_kind="chains"``).

Anytime points: ``"ladder"``.  Stopping the evolution early gives observables on part of the
time grid only, so checkpoints of the evolution are not points of an error-against-cost curve.
Each rung is instead the whole evolution with fewer samples (``ladder_fractions`` of
``samples`` and of ``obs_samples``: the TDVP's noise and the observables' floor both grow at a
coarser rung), its seconds that run's own, as the grid solvers' resolutions are.
``ladder="none"`` leaves one point, the final result.

Budget: none of the profiles' ``budget_s`` (a training budget of learned solvers): as for the
grids, a t-VMC run's cost is its whole evolution, which the error-against-cost curves place at
its own seconds.  ``max_seconds`` caps those seconds; a run that has not reached the final time by
then fails with a ``TimeoutError`` that says how far it got (there is no result on the whole
time grid to report).
"""

from __future__ import annotations

import importlib.util
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import ParameterError, Parametrized, param

from ..base import Budget, Clock, Observables, Solver
from ..isolated import get_process

__all__ = ["TVMC", "worker_env", "memory_estimate_gb"]

#: The module the t-VMC process serves.
WORKER = "solvers.tvmc.worker"
#: Extra seconds the parent waits for the process beyond the run's time limit.
GRACE_S = 120.0
#: Seconds allowed for a setup (imports, the fit of psi0, compilation).
SETUP_TIMEOUT_S = 900.0
#: Memory model of the process (see ``memory_estimate_gb``), on measured peaks of the process
#: at the defaults (one XLA thread): 0.92 GB for the 1-D packet (gaussian), 1.14 GB and 1.22 GB
#: for bosons d = 2, 3 (hermite); beyond d = 3 it is an extrapolation.  The JAX/NetKet process
#: with its compiled kernels, ...
BASE_GB = 1.0
#: ... and bytes per (sample x feature value x direction) of a vectorised local-energy batch.
BYTES_PER_ENTRY = 64.0


def worker_env(threads: int) -> dict[str, str]:
    """The environment of the t-VMC process: JAX on the CPU, one XLA thread for ``threads=1``
    (XLA's own thread pool, all cores, for ``threads=0``)."""
    flags = "--xla_force_host_platform_device_count=1"
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags, "OMP_NUM_THREADS": str(max(threads, 1))}


def tvmc_process(threads: int):
    """The t-VMC process for ``threads`` (started on first use, reused by later runs; replaced
    when it was started with other XLA threading, which cannot change in a running process)."""
    env = worker_env(threads)
    proc = get_process(WORKER, env)
    if proc.info.get("xla_flags") != env["XLA_FLAGS"]:
        proc.close()
        proc = get_process(WORKER, env)
    return proc


def _features(kind: str, d: int, n_max: int, symmetric: bool) -> int:
    """Feature values per configuration that a local energy's d directions each carry."""
    pairs = d * (d - 1) // 2
    if kind == "hermite":
        return d * (n_max + 3) + pairs * (n_max + 2)
    if kind == "gaussian":
        return d * (d + 1) // 2 + d if not symmetric else 3
    return 0


def memory_estimate_gb(problem, p) -> float:
    """Estimated peak memory of one t-VMC run (GB).

    The process and its compiled kernels (``BASE_GB``), plus the largest vectorised batch of
    local energies (the record-time energy samples, or the TDVP samples, or ``chunk_size``):
    each of the d forward-mode directions carries every feature value (Hermite functions of
    every coordinate and pair distance), plus the dense Jacobian (samples x parameters) of
    the QGT.
    """
    d = problem.d
    symmetric = p.symmetry == "bosons" or (p.symmetry == "auto" and problem.name == "bosons")
    n_obs = p.obs_samples or p.samples
    batch = max(p.samples, min(p.energy_samples or n_obs, n_obs))
    if p.chunk_size:
        batch = min(batch, p.chunk_size)
    feats = _features(p.ansatz, d, p.n_max, symmetric)
    if p.ansatz == "neural":
        feats = (d + d * (d - 1) // 2) * max(p.width, 1) * p.depth
    local = batch * d * feats * BYTES_PER_ENTRY
    jacobian = 3 * p.samples * feats * 16  # feats bounds the parameters of every ansatz
    return BASE_GB + (local + jacobian) / 1e9


class TVMC(Solver):
    """t-VMC: TDVP evolution of a variational state from Metropolis samples, on NetKet."""

    name = "tvmc"
    description = ("time-dependent variational Monte Carlo (NetKet): Hermite/Jastrow, Gaussian "
                   "or neural ansatz, TDVP, Metropolis samples; in its own process")
    anytime = "ladder"
    budget_param = None  # see "Budget" above
    extra = "tvmc"
    quick_params = {"n_max": 4, "samples": 512, "chains": 128, "obs_samples": 1024,
                    "energy_samples": 256, "fit_samples": 1024, "ladder": "none",
                    "fast_compile": True}

    @dataclass(frozen=True)
    class Params(Parametrized):
        ansatz: str = param("hermite", "variational form: Hermite basis with pair (Jastrow) "
                                       "terms, complex Gaussian, or Gaussian x MLPs",
                            choices=("hermite", "gaussian", "neural"))
        symmetry: str = param("auto", "permutation-symmetric features (auto: for bosons)",
                              choices=("auto", "bosons", "none"))
        parity: str = param("auto", "even features only (auto: where V and psi0 are even)",
                            choices=("auto", "even", "none"))
        n_max: int = param(8, "highest Hermite order (hermite)", lo=0, hi=40)
        scale_one: float = param(0.0, "length scale of one-body functions (0: from the box)",
                                 lo=0.0)
        scale_pair: float = param(0.0, "length scale of pair functions (0: from the box)",
                                  lo=0.0)
        width: int = param(16, "hidden width of the neural ansatz's MLPs", lo=1, hi=1024)
        depth: int = param(2, "hidden layers of the neural ansatz's MLPs", lo=1, hi=8)
        integrator: str = param("rk4", "RK4 with fixed dt, or adaptive RK45 (rtol, atol)",
                                choices=("rk4", "rk45"))
        dt: float = param(0.01, "time step (rk4; rk45: the first step)", lo=0.0, lo_open=True)
        rtol: float = param(1e-3, "relative tolerance (rk45)", lo=0.0, lo_open=True)
        atol: float = param(1e-4, "absolute tolerance (rk45)", lo=0.0, lo_open=True)
        linear_solver: str = param(
            "normalized_pinv", "QGT solve: pseudo-inverse of the unit-diagonal QGT, Cholesky, "
                               "NetKet's smooth pseudo-inverse or SVD",
            choices=("normalized_pinv", "cholesky", "pinv_smooth", "svd"))
        rcond: float = param(1e-4, "relative eigenvalue cut of the pseudo-inverse", lo=0.0,
                             lo_open=True, hi=1.0)
        diag_floor: float = param(1e-3, "floor of the QGT diagonal, relative to its largest "
                                        "entry (normalized_pinv)", lo=0.0, hi=1.0)
        diag_shift: float = param(0.0, "constant added to the QGT diagonal", lo=0.0)
        diag_scale: float = param(0.0, "fraction of its own diagonal added to the QGT", lo=0.0)
        qgt: str = param("dense", "QGT: dense Jacobian or on-the-fly products",
                         choices=("dense", "onthefly"))
        samples: int = param(8192, "Metropolis samples per TDVP evaluation (every RK stage)",
                             lo=1, hi=10**8)
        chains: int = param(1024, "Markov chains (persistent); divides samples and obs_samples",
                            lo=1, hi=10**7)
        discard: int = param(2, "sweeps discarded per chain before each TDVP sample set", lo=0)
        sweep_size: int = param(0, "Metropolis steps per sample (0: max(8, 2 d))", lo=0)
        step_factor: float = param(1.0, "proposal scale relative to 2.38 / sqrt(d) x the "
                                          "state's covariance", lo=0.0, lo_open=True)
        adapt_step: bool = param(True, "re-estimate the proposal's covariance at every record")
        obs_samples: int = param(32768, "samples at every record time for the observables",
                                 lo=1, hi=10**8)
        energy_samples: int = param(0, "record samples <H> is estimated from (0: all)", lo=0)
        obs_discard: int = param(4, "sweeps discarded per chain before the record samples",
                                 lo=0)
        keep_samples: int = param(0, "record samples of coordinates 0, 1 kept (0: all)", lo=0)
        chunk_size: int = param(0, "NetKet's chunk size, bounds memory (0: no chunks)", lo=0)
        fit_samples: int = param(4096, "exact samples of |psi0|^2 for the fit of log psi0",
                                 lo=16, hi=10**7)
        max_seconds: float = param(0.0, "seconds the evolution may take (0: no limit); a run "
                                        "not done by then fails", lo=0.0)
        ladder: str = param("samples", "anytime points: the run at ladder_fractions of samples "
                                       "and obs_samples (samples), or one point (none)",
                            choices=("samples", "none"))
        ladder_fractions: str = param("0.25,0.5", "fractions of samples of the ladder's "
                                                  "coarser rungs, comma-separated")
        fast_compile: bool = param(False, "compile with most XLA optimisations off (JAX's "
                                          "jax_disable_most_optimizations): for short runs, "
                                          "where compiling costs more than running")
        threads: int = param(1, "XLA threads of the t-VMC process (1, or 0: XLA's own pool)",
                             choices=(0, 1))
        memory_limit_gb: float = param(16.0, "decline runs whose memory estimate exceeds this",
                                       lo=0.0, lo_open=True)

        def validate(self) -> None:
            for name in ("samples", "obs_samples"):
                if getattr(self, name) % self.chains:
                    raise ParameterError(
                        f"solver tvmc: {name}={getattr(self, name)} must be a multiple of "
                        f"chains={self.chains} (every chain gives the same number of samples)")
            fractions = self.fractions()
            if any(not 0.0 < f < 1.0 for f in fractions):
                raise ParameterError(f"solver tvmc: ladder_fractions must lie in (0, 1), got "
                                     f"{self.ladder_fractions!r}")

        def fractions(self) -> tuple[float, ...]:
            try:
                return tuple(sorted(float(v) for v in self.ladder_fractions.split(",")
                                    if v.strip()))
            except ValueError:
                raise ParameterError(f"solver tvmc: ladder_fractions must be comma-separated "
                                     f"numbers, got {self.ladder_fractions!r}") from None

    # --- contract ----------------------------------------------------------------------
    @classmethod
    def missing_extra(cls) -> str | None:
        for module in ("netket", "jax"):
            if importlib.util.find_spec(module) is None:
                return f"not installed: {module} is missing (pip install 'dsm-bench[tvmc]')"
        return None

    def skip(self, problem) -> str | None:
        missing = self.missing_extra()
        if missing:
            return missing
        p = self.params
        if callable(getattr(problem, "node", None)):
            return ("the density has a node (psi changes sign): every ansatz here is exp of a "
                    "smooth log psi, which cannot vanish, and log psi0 is not finite there")
        if p.ansatz == "neural" and problem.d < 1:
            return "the neural ansatz needs d >= 1"
        need = memory_estimate_gb(problem, p)
        if need > p.memory_limit_gb:
            return (f"{p.ansatz} at d={problem.d} needs about {need:.1f} GB (local energies of "
                    f"{max(p.samples, p.energy_samples or p.obs_samples)} samples in a batch), "
                    f"over memory_limit_gb={p.memory_limit_gb:g}; set chunk_size to bound it")
        return None

    def settings(self) -> dict[str, Any]:
        """The engine's settings (:class:`solvers.tvmc.settings.Settings`) from the parameters."""
        p = self.params
        return {
            "ansatz": p.ansatz, "symmetry": p.symmetry, "parity": p.parity, "n_max": p.n_max,
            "scale_one": p.scale_one or None, "scale_pair": p.scale_pair or None,
            "hidden": [p.width] * p.depth, "integrator": p.integrator, "dt": p.dt,
            "rtol": p.rtol, "atol": p.atol, "diag_shift": p.diag_shift,
            "diag_scale": p.diag_scale or None, "linear_solver": p.linear_solver,
            "rcond": p.rcond, "diag_floor": p.diag_floor, "n_samples": p.samples,
            "n_chains": p.chains, "n_discard": p.discard, "sweep_size": p.sweep_size or None,
            "step_factor": p.step_factor, "adapt_step": p.adapt_step,
            "n_samples_obs": p.obs_samples, "n_samples_energy": p.energy_samples or None,
            "n_discard_obs": p.obs_discard, "keep_samples": p.keep_samples or None,
            "chunk_size": p.chunk_size or None, "qgt": p.qgt, "fit_samples": p.fit_samples,
        }

    def setup(self, problem, *, times, device="cpu", seed=0, budget: Budget | None = None,
              workdir=None):
        self.problem = problem
        self.times = np.asarray(times, dtype=float)
        self.seed = int(seed)
        self.budget = budget or Budget()
        self.workdir = Path(workdir) if workdir is not None else None
        self.token = uuid.uuid4().hex
        self._spec = {"token": self.token, "problem": problem, "times": self.times,
                      "settings": self.settings(), "seed": self.seed,
                      "fast_compile": self.params.fast_compile}
        self.worker_info = self._prepare(tvmc_process(self.params.threads))
        self.resolved = {"scales": self.worker_info["scales"],
                         "symmetric": self.worker_info["symmetric"],
                         "even": self.worker_info["even"],
                         "n_parameters": self.worker_info["n_parameters"]}
        self.result = None

    def _prepare(self, worker) -> dict[str, Any]:
        info = worker.request("setup", self._spec, timeout=SETUP_TIMEOUT_S)
        worker.token = self.token
        return dict(info, worker_pid=worker.info["pid"],
                    versions={k: worker.info[k] for k in ("netket", "jax", "flax", "numpy")},
                    xla_flags=worker.info["xla_flags"])

    def run(self, clock: Clock) -> None:
        p = self.params
        worker = tvmc_process(p.threads)
        if worker.token != self.token:  # another run used the process since setup: rebuild
            self.worker_info = self._prepare(worker)
        limits = [s for s in (p.max_seconds, self.budget.seconds) if s]
        timeout = None if self.budget.seconds is None else self.budget.seconds + GRACE_S
        res = worker.request("run", {"token": self.token,
                                     "max_seconds": min(limits) if limits else None},
                             timeout=timeout)
        worker.token = None
        self.iterations = int(res["diagnostics"]["steps"])
        self.history = {"t": [float(t) for t in res["times"][1:]],
                        "record_s": list(res["record_seconds"][1:]),
                        "steps": list(res["record_steps"][1:]),
                        "acceptance": [float(a) for a in res["acceptance"][1:]],
                        "ess": [float(e) for e in res["ess"][1:]]}
        reached, total = len(res["times"]), len(self.times)
        if res["stopped"] == "nonfinite":
            raise FloatingPointError(f"tvmc: {res['diagnostics']['failure']}")
        if res["stopped"] == "max_seconds":
            which = ("its time limit" if self.budget.seconds and
                     (not p.max_seconds or self.budget.seconds < p.max_seconds)
                     else f"max_seconds={p.max_seconds:g}")
            raise TimeoutError(f"tvmc: {which} spent at t={res['times'][-1]:.4g} of "
                               f"{self.times[-1]:.4g} ({reached} of {total} record times)")
        self.result = res
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            np.savez(self.workdir / "tvmc_observables.npz", times=res["times"],
                     mean=res["mean"], var=res["var"], com_var=res["com_var"],
                     energy=res["energy"], ess=res["ess"])

    def ladder(self) -> list[dict[str, Any]]:
        """Coarser rungs: ``samples`` and ``obs_samples`` times each of ``ladder_fractions``
        (whole samples per chain; repeated rungs dropped), coarsest first; none for
        ``ladder="none"``.  Both are scaled: measured, the record-time samples cost as much as
        the TDVP's (1-D packet: 2048, 4096 and 8192 TDVP samples all took 19-26 s with 32768
        record samples), so a ladder of TDVP samples alone is no ladder of cost."""
        p = self.params
        if p.ladder == "none":
            return []

        def scaled(n: int, f: float) -> int:
            return max(p.chains, int(round(n * f / p.chains)) * p.chains)

        rungs, seen = [], {(p.samples, p.obs_samples)}
        for f in p.fractions():
            rung = (scaled(p.samples, f), scaled(p.obs_samples, f))
            if rung not in seen:
                seen.add(rung)
                rungs.append({"samples": rung[0], "obs_samples": rung[1]})
        return sorted(rungs, key=lambda r: (r["samples"], r["obs_samples"]))

    # --- observables -------------------------------------------------------------------
    def evaluate(self) -> Observables:
        res = self.result
        ess = np.minimum(np.minimum(res["ess"], res["ess_com"]), res["ess_sq"])
        diag = dict(res["diagnostics"])
        diag.pop("settings", None)  # the record holds the solver's parameters
        diag.update({
            "ess": res["ess"], "ess_com": res["ess_com"], "ess_sq": res["ess_sq"],
            "tau_corr_max": float(np.max(res["tau_corr"])),
            "r_hat_max": float(np.max(res["r_hat"])),
            "acceptance_min": float(np.min(res["acceptance"])),
            "acceptance_max": float(np.max(res["acceptance"])),
            "energy_stderr_max": float(np.max(res["energy_err"])),
            "energy_imag_max": float(np.max(np.abs(res["energy_imag"]))),
            "evolution_seconds": float(res["run_seconds"]),
            "worker_setup_seconds": float(self.worker_info["setup_seconds"]),
            "worker_peak_rss_mb": res["peak_rss_mb"],
            "memory_estimate_gb": memory_estimate_gb(self.problem, self.params),
            "worker": {k: self.worker_info[k] for k in ("worker_pid", "versions", "xla_flags")},
        })
        samples = np.asarray(res["samples"], dtype=float)
        return Observables(
            times=np.asarray(res["times"], dtype=float), mean=res["mean"], var=res["var"],
            com_var=res["com_var"], energy=res["energy"],
            samples=samples, n_samples=int(res["n_samples"]),
            effective_samples=np.asarray(ess, dtype=float), sample_kind="chains",
            diagnostics={k: (v.tolist() if isinstance(v, np.ndarray) else v)
                         for k, v in diag.items()})

