"""Time-dependent variational Monte Carlo (t-VMC) on NetKet: the numerics of the ``tvmc`` solver.

This module imports JAX and NetKet, so it runs only in a process of its own (nothing else in the
package imports it).  It evolves a variational wave function psi_theta from psi0 with the
time-dependent variational principle (TDVP), estimating the quantum geometric tensor (QGT) and
the forces from Metropolis samples of |psi_theta|^2, and reports observables at record times.

Units.  NetKet's real-time TDVP integrates d psi/dt = -i G psi for a generator G.  The problem's
equation is i hbar d psi/dt = H psi with H = -(hbar^2/2m) Laplacian + V(x, t), so the generator
is G = H / hbar, whose local value is

    G_loc(x) = -(hbar / 2m) [Laplacian log psi + (grad log psi)^2] + V(x, t) / hbar,

and time keeps the problem's units.  (NetKet's own KineticEnergy assumes hbar = 1: it would be
KineticEnergy(mass = m / hbar) plus V / hbar; :class:`Generator` computes the same in one kernel
and lets V depend on t through a traced time, so a time-dependent potential compiles once.)

Space.  Configurations live in R^d: the Hilbert space is NetKet's ``Particle`` with d particles
on a line of free space (no box, no periodicity).  A non-periodic box would change nothing
(NetKet's Gaussian proposals never look at its extent); a periodic one would add images that the
problems do not have.

Entry points: :class:`Settings`, :class:`Engine` (set up once, then :meth:`Engine.advance` from
record time to record time) and :func:`run` (everything at once, returning a dict).
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import netket.experimental as nkx
import numpy as np

from core.memory import peak_rss_mb, reset_peak_rss

from . import ansatz as ans
from .operators import Generator, normalized_pinv, AdaptiveGaussianRule, proposal_factor
from .settings import Settings, log_psi0_of, parity_even, symmetric

__all__ = ["Settings", "Engine", "Generator", "run", "versions", "peak_rss_mb"]

jax.config.update("jax_enable_x64", True)


# --- helpers -----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    import flax

    return {"netket": nk.__version__, "jax": jax.__version__, "flax": flax.__version__,
            "numpy": np.__version__}


def _ess(data: np.ndarray) -> tuple[float, float, float]:
    """NetKet's statistics of one observable over chains (n_chains, chain_length): the effective
    sample size variance / (error of the mean)^2 (the error from the spread of the chain means),
    the integrated autocorrelation time and split R-hat."""
    st = nk.stats.statistics(jnp.asarray(data))
    err2 = float(st.error_of_mean) ** 2
    var = float(st.variance)
    ess = var / err2 if err2 > 0 else float(data.size)
    return min(ess, float(data.size)), float(st.tau_corr), float(st.R_hat)


# --- the engine --------------------------------------------------------------------------------
class Engine:
    """One t-VMC run: built (and compiled) once, then advanced through the record times.

    Parameters
    ----------
    problem : problems.Problem
    times : array of float
        Record times, increasing, the first one t = 0 (the initial state).
    settings : Settings or dict
    seed : int
    warm : bool
        Compile the TDVP right-hand side and the record-time kernels during construction, so
        that :attr:`setup_seconds` holds the compilation and :attr:`run_seconds` the solve.
    """

    def __init__(self, problem, times, settings: Settings | dict | None = None, seed: int = 0,
                 warm: bool = True):
        reset_peak_rss()
        started = time.perf_counter()
        self.problem = problem
        self.settings = s = (settings if isinstance(settings, Settings)
                             else Settings.from_dict(settings))
        times = np.asarray(times, dtype=float)
        if times.ndim != 1 or len(times) < 1 or np.any(np.diff(times) <= 0):
            raise ValueError("tvmc: times must be a 1-D increasing array")
        if abs(times[0]) > 1e-12:
            raise ValueError(f"tvmc: the first record time must be 0 (psi0), got {times[0]}")
        self.times = times
        self.seed = int(seed)
        d = self.d = int(problem.d)
        self.rng = np.random.default_rng(seed)

        # exact samples of |psi0|^2: for the fit of log psi0, the proposal's shape and parity
        x0 = np.asarray(problem.sample_x0(s.fit_samples, self.rng), dtype=float)
        hint = problem.grid_hint()
        half = 0.5 * float(np.max(np.asarray(hint.hi) - np.asarray(hint.lo)))
        bosonic = symmetric(problem, s.symmetry)
        even = parity_even(problem, s.parity, x0)
        if s.ansatz == "hermite":
            s_one = s.scale_one or half / math.sqrt(2 * s.n_max + 1)
            s_pair = s.scale_pair or 2 * half / math.sqrt(2 * s.n_max + 1)
        else:
            s_one = s.scale_one or half / 3
            s_pair = s.scale_pair or half / 3
        self.spec = ans.AnsatzSpec(s.ansatz, d, bosonic, even, s.n_max, float(s_one),
                                   float(s_pair), tuple(s.hidden))
        self.model = ans.build(self.spec)

        self.hilbert = nkx.hilbert.Particle(N=d, geometry=nkx.geometry.FreeSpace(1))
        factor = proposal_factor(np.cov(x0, rowvar=False), s.step_factor)
        self.sampler = nk.sampler.MetropolisSampler(
            self.hilbert, AdaptiveGaussianRule(factor), n_chains=s.n_chains,
            sweep_size=s.sweep_size or max(8, 2 * d), dtype=jnp.float64)
        self.vstate = nk.vqs.MCState(self.sampler, self.model, n_samples=s.n_samples,
                                     n_discard_per_chain=s.n_discard, chunk_size=s.chunk_size,
                                     seed=int(self.rng.integers(2**31)),
                                     sampler_seed=int(self.rng.integers(2**31)))
        self.fit_residual = self._initialise(x0)
        # the chains start on exact samples of |psi0|^2, i.e. in equilibrium
        start = np.asarray(problem.sample_x0(s.n_chains, self.rng), dtype=float)
        self.vstate.sampler_state = self.vstate.sampler_state.replace(σ=jnp.asarray(start))

        def potential(x, t):
            return problem.potential(x, t)

        self.generator = Generator(self.hilbert, potential, problem.hbar, problem.mass, 0.0)
        apply = self.vstate._apply_fun
        self._local_values = jax.jit(lambda gen, variables, x: gen._expect_kernel(apply, variables, x))
        self.driver = self._driver()
        self.t_index = 0
        self.steps = 0
        self.records: list[dict[str, Any]] = []
        #: Why the run stopped early (non-finite parameters), or None.
        self.failure: str | None = None
        if warm:
            self._warm_up()
        self.setup_seconds = time.perf_counter() - started
        self.run_seconds = 0.0

    # --- construction ------------------------------------------------------------------------
    def _initialise(self, x0: np.ndarray) -> float:
        """Set the parameters so that psi_theta = psi0 (up to a constant); returns the fit's
        relative RMS residual in log psi (0 when psi0 is in the ansatz's span)."""
        spec = self.spec
        params = jax.tree.map(lambda a: a, self.vstate.parameters)
        if spec.linear:
            theta, resid = ans.fit_linear(spec, log_psi0_of(self.problem), x0)
            params = dict(params, theta=jnp.asarray(theta, dtype=jnp.complex128))
        else:
            env = ans.AnsatzSpec("gaussian", spec.d, spec.symmetric, spec.even)
            theta, resid = ans.fit_linear(env, log_psi0_of(self.problem), x0)
            params = dict(params, env_re=jnp.asarray(theta.real), env_im=jnp.asarray(theta.imag))
        self.vstate.parameters = params
        return resid

    def _driver(self):
        s = self.settings
        if s.linear_solver == "normalized_pinv":
            solver = partial(normalized_pinv, rcond=s.rcond, diag_floor=s.diag_floor)
        elif s.linear_solver == "cholesky":
            solver = nk.optimizer.solver.cholesky
        elif s.linear_solver == "pinv_smooth":
            solver = partial(nk.optimizer.solver.pinv_smooth, rcond_smooth=s.rcond)
        else:
            solver = partial(nk.optimizer.solver.svd, rcond=s.rcond)
        holomorphic = True if self.spec.linear else None
        if s.qgt == "onthefly" and s.linear_solver in ("normalized_pinv", "cholesky", "svd"):
            raise ValueError(f"tvmc: linear_solver={s.linear_solver!r} needs qgt='dense'")
        if s.qgt == "dense":
            qgt = nk.optimizer.qgt.QGTJacobianDense(holomorphic=holomorphic,
                                                    diag_shift=s.diag_shift,
                                                    diag_scale=s.diag_scale)
        else:
            qgt = nk.optimizer.qgt.QGTOnTheFly(holomorphic=holomorphic, diag_shift=s.diag_shift,
                                               diag_scale=s.diag_scale)
        if s.integrator == "rk4":
            ode = nkx.dynamics.RK4(dt=s.dt)
        else:
            ode = nkx.dynamics.RK45(dt=s.dt, rtol=s.rtol, atol=s.atol,
                                    dt_limits=(None, max(s.dt * 10, 1e-12)))
        return nkx.TDVP(self.generator.at, self.vstate, ode, qgt=qgt, linear_solver=solver,
                        propagation_type="real", t0=0.0)

    def _warm_up(self) -> None:
        """Compile what the run will call: one integrator step over the first record interval
        (sampling, local energies, forces, QGT and its solve at every stage, and the step's own
        kernels: measured, the first step compiles for 25 s at d = 2), then, with the stepped
        parameters (their arrays are typed as the run's will be: with the initial ones the
        kernels compile again), the record-time sampling, local energies and finiteness check.
        Everything is then undone (parameters, sampler state with its random key, the
        integrator and the driver's step count), so the run computes exactly what it would
        have without the warm-up."""
        driver = self.driver
        saved = (driver._integrator, driver._step_count, self.vstate.parameters,
                 self.vstate.sampler_state)
        if len(self.times) > 1:
            span = float(self.times[1] - self.times[0])
            self._run_segment(span, float(self.times[1]))
        else:
            jax.block_until_ready(driver.ode())
        self._finite()
        self._warm_observation()
        driver._integrator, driver._step_count = saved[0], saved[1]
        self.vstate.parameters = saved[2]
        self._warm_observation()  # psi0's record at t = 0
        self.vstate.sampler_state = saved[3]
        self.vstate.reset()

    def _warm_observation(self) -> None:
        """Compile a record for the current parameters (sampling, local energies, statistics,
        the proposal's adaptation); the caller restores the sampler state."""
        self.observe()

    def _finite(self) -> bool:
        return all(bool(jnp.all(jnp.isfinite(leaf)))
                   for leaf in jax.tree.leaves(self.vstate.parameters))

    # --- observables ---------------------------------------------------------------------------
    def observe(self) -> dict[str, Any]:
        """Observables of the current state from fresh record-time samples."""
        s = self.settings
        n_obs = s.n_samples_obs or s.n_samples
        t = float(self.driver.t) if self.t_index else 0.0
        samples = self.vstate.sample(n_samples=n_obs, n_discard_per_chain=s.n_discard_obs)
        x = np.asarray(samples).reshape(s.n_chains, -1, self.d)  # (chains, length, d)
        flat = x.reshape(-1, self.d)
        com = flat.mean(axis=1)
        gen = self.generator.at(t)
        # <H> from n_samples_energy of the record samples (spread over all chains): local
        # energies cost d second-order passes each, far more than the moments
        n_energy = min(s.n_samples_energy or n_obs, n_obs)
        per_chain = max(1, -(-n_energy // s.n_chains))
        e_pts = x[:, :per_chain].reshape(-1, self.d)
        e_loc = np.asarray(self._local_values(gen, self.vstate.variables, jnp.asarray(e_pts)))
        energy = self.problem.hbar * e_loc
        ess_coord = [_ess(x[:, :, i]) for i in range(min(self.d, 8))]
        ess_com = _ess(x.mean(axis=2))
        ess_sq = _ess(x[:, :, 0] ** 2)
        acc = self.vstate.sampler_state.acceptance
        rec = {
            "t": t,
            "mean": flat.mean(axis=0),
            "var": flat.var(axis=0),
            "com_var": float(com.var()),
            "energy": float(np.mean(energy.real)),
            "energy_err": float(np.std(energy.real) / math.sqrt(len(energy))),
            "energy_imag": float(np.mean(energy.imag)),
            "ess": float(min(e[0] for e in ess_coord)),
            "ess_com": ess_com[0],
            "ess_sq": ess_sq[0],
            "tau_corr": float(max(e[1] for e in ess_coord)),
            "r_hat": float(max(e[2] for e in ess_coord)),
            "acceptance": float(acc) if acc is not None else float("nan"),
            "pairs": flat[: s.keep_samples, : min(self.d, 2)].copy(),
        }
        if s.adapt_step:
            factor = proposal_factor(np.cov(flat, rowvar=False), s.step_factor)
            self.vstate.sampler_state = self.vstate.sampler_state.replace(
                rule_state=jnp.asarray(factor))
        return rec

    # --- stepping ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.t_index >= len(self.times) - 1 and bool(self.records)

    def _run_segment(self, span: float, target: float) -> None:
        """Integrate from the current time to ``target`` (``span`` ahead).

        NetKet's driver treats a stopping time within ``isclose`` of the current time as
        reached, yet keeps stepping while t < t_end: a clipped step that lands one rounding
        error short of ``target`` is followed by a full step past it.  So with the fixed-step
        RK4 every segment is cut into n equal steps of at most ``dt`` and run, without stopping
        times, to a hair before ``target``: the n-th step lands on ``target`` (to rounding) and
        ends the run.  The adaptive RK45 needs the clipping; its landing time is recorded
        (``t_driver``) and the worst offset reported.
        """
        s = self.settings
        if s.integrator == "rk4":
            n = max(1, int(math.ceil(span / s.dt - 1e-9)))
            integrator = self.driver._integrator
            integrator._state = integrator._state.replace(
                dt=jnp.asarray(span / n, dtype=integrator._state.dt.dtype))
            self.driver.run(span * (1.0 - 1e-9), show_progress=False)
        else:
            self.driver.run(span, tstops=[target], show_progress=False)

    def advance(self) -> dict[str, Any]:
        """Evolve to the next record time (the first call observes psi0 at t = 0) and return
        the observables there."""
        started = time.perf_counter()
        if not self.records:
            rec = self.observe()
        else:
            if self.t_index >= len(self.times) - 1:
                raise RuntimeError("tvmc: already at the last record time")
            target = float(self.times[self.t_index + 1])
            span = target - float(self.driver.t)
            before = self.driver.step_count
            self._run_segment(span, target)
            self.steps += int(self.driver.step_count - before)
            self.t_index += 1
            if not self._finite():
                self.failure = (f"the parameters became non-finite between t = "
                                f"{self.times[self.t_index - 1]:g} and t = {target:g}")
                self.run_seconds += time.perf_counter() - started
                raise FloatingPointError(f"tvmc: {self.failure}")
            rec = self.observe()
            rec["t"] = float(self.times[self.t_index])
            rec["t_driver"] = float(self.driver.t)
        self.records.append(rec)
        self.run_seconds += time.perf_counter() - started
        return rec

    def run(self, deadline: float | None = None) -> None:
        """Advance through every record time (or until ``time.perf_counter() > deadline``, or
        until the parameters become non-finite: :attr:`failure` then says so and the result
        holds the record times reached)."""
        if not self.records:
            self.advance()
        while self.t_index < len(self.times) - 1:
            if deadline is not None and time.perf_counter() > deadline:
                break
            try:
                self.advance()
            except FloatingPointError:
                break

    def result(self) -> dict[str, Any]:
        """Everything recorded so far, stacked over the record times reached."""
        recs = self.records
        n = len(recs)
        keys_scalar = ("com_var", "energy", "energy_err", "energy_imag", "ess", "ess_com",
                       "ess_sq", "tau_corr", "r_hat", "acceptance")
        out = {
            "times": self.times[:n].copy(),
            "mean": np.stack([r["mean"] for r in recs]),
            "var": np.stack([r["var"] for r in recs]),
            "samples": np.stack([r["pairs"] for r in recs]),
            "n_samples": int(self.settings.n_samples_obs or self.settings.n_samples),
        }
        for k in keys_scalar:
            out[k] = np.array([r[k] for r in recs])
        out["diagnostics"] = {
            "complete": n == len(self.times),
            "failure": self.failure,
            "steps": self.steps,
            "time_offset_max": float(max((abs(r.get("t_driver", r["t"]) - r["t"]) for r in recs),
                                         default=0.0)),
            "n_parameters": int(self.vstate.n_parameters),
            "fit_residual": self.fit_residual,
            "setup_seconds": self.setup_seconds,
            "run_seconds": self.run_seconds,
            "peak_rss_mb": peak_rss_mb(),
            "scales": {"one": self.spec.s_one, "pair": self.spec.s_pair},
            "symmetric": self.spec.symmetric, "even": self.spec.even,
            "settings": self.settings.as_dict(),
            "versions": versions(),
        }
        return out


def run(problem, times, settings: Settings | dict | None = None, seed: int = 0,
        deadline: float | None = None) -> dict[str, Any]:
    """Run t-VMC from psi0 through ``times`` and return the observables.

    Returns
    -------
    dict with
        ``times`` (T,), ``mean`` and ``var`` (T, d), ``com_var`` (T,), ``energy`` (T,) <H> and its
        standard error ``energy_err`` (T,) (independent-sample estimate), ``samples`` (T, S, k)
        the record-time Markov-chain samples of coordinates 0..k-1 (k = min(d, 2)),
        ``n_samples`` S, ``ess`` (T,) the smallest effective sample size of a coordinate's mean
        (NetKet's statistics: variance / error-of-mean^2 from the chains' spread), ``ess_com``
        and ``ess_sq`` the same for the mean coordinate and for x_0^2, ``tau_corr`` and ``r_hat``
        (T,) the worst over coordinates, ``acceptance`` (T,), and ``diagnostics``.
    """
    engine = Engine(problem, times, settings, seed)
    engine.run(deadline)
    return engine.result()
