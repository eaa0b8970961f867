"""The t-VMC engine's numerics (solvers/tvmc/engine.py, NetKet): fast checks (the slow accuracy
checks against exact and grid references are the solver's, in tests/test_tvmc.py).

The engine imports JAX and NetKet, so these tests skip where NetKet is not installed
(``pip install 'dsm-bench[tvmc]'``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

# single-threaded XLA before JAX is first imported (the suite's tests share the CPU cores)
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1 "
                      "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
pytest.importorskip("netket")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import netket as nk  # noqa: E402

import problems  # noqa: E402
from solvers.tvmc import engine as E  # noqa: E402
from solvers.tvmc import ansatz as A  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Small settings that compile and run in seconds.
QUICK = dict(n_samples=1024, n_chains=256, n_samples_obs=2048, fit_samples=1024)


def gaussian_moments(theta: np.ndarray) -> tuple[float, float]:
    """Mean and variance of |psi|^2 for the 1-D gaussian ansatz log psi = t0 x^2 + t1 x."""
    a, b = theta[0].real, theta[1].real
    return -b / (2 * a), -1 / (4 * a)


def test_package_does_not_import_jax():
    code = ("import sys; import solvers, solvers.tvmc; "
            "assert 'jax' not in sys.modules and 'netket' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=ROOT))


def test_settings_validate():
    with pytest.raises(ValueError, match="ansatz"):
        E.Settings(ansatz="rbm")
    with pytest.raises(ValueError, match="multiple of n_chains"):
        E.Settings(n_samples=1000, n_chains=512)
    with pytest.raises(ValueError, match="unknown tvmc settings"):
        E.Settings.from_dict({"n_sample": 10})
    assert E.Settings.from_dict(E.Settings().as_dict()) == E.Settings()


def test_hermite_functions_are_orthonormal():
    z = np.linspace(-12, 12, 20001)
    phi = np.asarray(A.hermite_functions(jnp.asarray(z), 10))
    gram = np.trapezoid(phi[:, :, None] * phi[:, None, :], z, axis=0)
    np.testing.assert_allclose(gram, np.eye(11), atol=1e-8)


@pytest.mark.slow  # JAX compilation: 12-15 s
def test_generator_matches_netket_kinetic_energy():
    """G_loc = -(hbar/2m)(Lap log psi + (grad log psi)^2) + V/hbar equals NetKet's KineticEnergy
    with mass m/hbar (its hbar = 1) plus V/hbar, for a complex, non-Gaussian log psi."""
    p = problems.get("bosons", d=3, hbar=0.3, mass=1.7)
    eng = E.Engine(p, [0.0, 0.1], dict(QUICK), seed=0, warm=False)
    theta = eng.vstate.parameters["theta"]
    k = jnp.arange(theta.size)
    eng.vstate.parameters = {"theta": theta + 0.2 * ((k % 3) - 1) * (1 + 0.5j)}
    x = jnp.asarray(np.random.default_rng(0).normal(0.0, 0.4, (16, 3)))
    apply, variables = eng.vstate._apply_fun, eng.vstate.variables
    mine = np.asarray(eng._local_values(eng.generator, variables, x))
    kinetic = nk.operator.KineticEnergy(eng.hilbert, mass=p.mass / p.hbar)
    theirs = (np.asarray(jax.jit(lambda v, y: kinetic._expect_kernel(apply, v, y))(variables, x))
              + np.asarray(p.potential(np.asarray(x))) / p.hbar)
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)
    assert np.max(np.abs(mine.imag)) > 1e-3  # a complex local energy was tested


@pytest.mark.parametrize("name, kind, params", [
    ("harmonic_1d_moving", "gaussian", {}),
    ("harmonic_1d_moving", "hermite", {}),
    ("bosons", "gaussian", {"d": 3}),
    ("bosons", "hermite", {"d": 3}),
    pytest.param("bosons", "neural", {"d": 4}, marks=pytest.mark.slow),  # 11 s of compilation
])
def test_initial_state_is_psi0(name, kind, params):
    """log psi_theta - log psi0 is one constant (normalisation) on samples of |psi0|^2."""
    p = problems.get(name, **params)
    eng = E.Engine(p, [0.0, 0.1], dict(QUICK, ansatz=kind), seed=1, warm=False)
    x = np.asarray(p.sample_x0(256, np.random.default_rng(2)))
    ours = np.asarray(eng.vstate._apply_fun(eng.vstate.variables, jnp.asarray(x)))
    exact = 0.5 * np.asarray(p.log_rho0(x)) + 1j * np.asarray(p.phase0(x))
    diff = ours - exact
    assert np.max(np.abs(diff - diff.mean())) < 1e-9
    assert eng.fit_residual < 1e-9


def test_symmetry_and_parity_detection():
    bosons = E.Engine(problems.get("bosons", d=2), [0.0], dict(QUICK), warm=False)
    assert bosons.spec.even and bosons.spec.symmetric
    off_centre = E.Engine(problems.get("harmonic_1d"), [0.0], dict(QUICK, ansatz="gaussian"),
                          warm=False)
    assert not off_centre.spec.even and not off_centre.spec.symmetric


@pytest.mark.slow  # JAX compilation: 12-15 s
def test_gaussian_packet_evolves_exactly():
    """The gaussian ansatz contains the exact packet, so TDVP's least squares has a zero
    residual on any samples: the parameters follow the exact moments to the integrator's
    accuracy, and the sampled observables are Monte Carlo estimates of them."""
    p = problems.get("harmonic_1d_moving")
    times = np.linspace(0.0, 0.2, 11)
    eng = E.Engine(p, times, dict(QUICK, ansatz="gaussian", dt=0.01), seed=3)
    eng.advance()  # observes psi0 at t = 0
    implied = [gaussian_moments(np.asarray(eng.vstate.parameters["theta"]))]
    while eng.t_index < len(times) - 1:
        eng.advance()
        implied.append(gaussian_moments(np.asarray(eng.vstate.parameters["theta"])))
    res = eng.result()
    ref = p.reference()
    implied = np.array(implied)
    np.testing.assert_allclose(implied[:, 0], ref.mean(times)[:, 0], atol=1e-9)
    np.testing.assert_allclose(implied[:, 1], ref.var(times)[:, 0], rtol=1e-7)
    # observables at the record times, within 5 standard errors of the exact values
    se_mean = np.sqrt(ref.var(times)[:, 0] / res["ess"])
    assert np.all(np.abs(res["mean"][:, 0] - ref.mean(times)[:, 0]) < 5 * se_mean)
    assert np.all(np.abs(res["var"][:, 0] / ref.var(times)[:, 0] - 1)
                  < 5 * np.sqrt(2 / res["ess_sq"]))
    assert res["diagnostics"]["complete"] and res["diagnostics"]["failure"] is None


@pytest.mark.slow  # JAX compilation: 12-15 s
def test_result_layout():
    p = problems.get("bosons", d=3)
    times = np.linspace(0.0, 0.04, 3)
    res = E.run(p, times, dict(QUICK, n_max=4), seed=0)
    T = len(times)
    assert res["mean"].shape == (T, 3) and res["var"].shape == (T, 3)
    for key in ("com_var", "energy", "energy_err", "ess", "ess_com", "ess_sq", "tau_corr",
                "r_hat", "acceptance"):
        assert res[key].shape == (T,), key
    assert res["samples"].shape == (T, res["n_samples"], 2)
    assert np.all((res["ess"] > 0) & (res["ess"] <= res["n_samples"]))
    assert np.all((res["acceptance"] > 0.05) & (res["acceptance"] < 0.95))
    np.testing.assert_allclose(res["times"], times)
    inv = p.invariants()
    assert abs(res["energy"][0] - inv.energy) < 5 * res["energy_err"][0] + 1e-3 * inv.energy
    assert res["diagnostics"]["steps"] == 4


# The slow accuracy checks (the 1-D packets at their floors, bosons d = 2 against the grid) run
# through the harness in tests/test_tvmc.py, with the harness's own floors.
