"""The driven packet: its exact reference checked against quadrature, finite differences of
Nelson's equations, the forced oscillator and a brute-force simulation."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

import problems
from core import ParameterError
from problems import driven

# --- harmonic_driven ---------------------------------------------------------------------------
DRIVEN_CASES = [
    dict(),                                                               # the defaults
    dict(omega=1.0, drive_omega=1.0, phase=1.5, force=-0.8),              # resonance
    dict(omega=0.0, drive_omega=2.0, phase=-2.0),                         # free particle, forced
    dict(d=2, omega=1.3, drive_omega=0.4, hbar=0.05, center=-0.2, force=2.0, sigma2=0.05,
         mass=0.7),
    dict(omega=2.0, drive_omega=0.0, phase=0.5),                          # Omega = 0: no force
]
_ids = ["defaults", "resonant", "free", "d2-slow-drive", "no-drive"]


def _drv(**kw):
    return problems.get("harmonic_driven", **kw)


def _undriven(p):
    """The same packet without the force."""
    kw = {k: v for k, v in p.params().items() if k not in ("force", "drive_omega")}
    return problems.get("harmonic_nd", **kw)


def _d5(f, t, h):
    """Fourth-order central difference of f at t."""
    return (f(t - 2 * h) - 8 * f(t - h) + 8 * f(t + h) - f(t + 2 * h)) / (12 * h)


def test_driven_defaults_and_contract():
    p = _drv()
    assert p.params() == dict(d=1, hbar=0.01, mass=1.0, omega=1.0, center=0.1, sigma2=0.1,
                              phase=0.0, t_final=1.0, force=0.5, drive_omega=2.0)
    assert p.static_potential is False and problems.get("harmonic_1d").static_potential is True
    assert _drv(d=5).d == 5
    with pytest.raises(ParameterError):
        _drv(drive_omega=-1.0)
    ref = p.reference()
    assert ref.kind == "exact" and ref.has_paths and ref.has_samples and ref.has_velocities
    inv = p.invariants()
    assert not inv.energy_conserved and not inv.zero_mean
    assert inv.energy == pytest.approx(problems.get("harmonic_1d").exact_energy(), rel=1e-14)
    assert _drv(force=0.0).invariants().zero_mean is False  # the off-centre trap still pulls
    assert _drv(force=0.0, center=0.0).invariants().zero_mean
    # without the force the moments are the undriven packet's
    t = np.linspace(0, 2, 21)
    unforced, packet = _drv(d=2, force=0.0, phase=1.0), _undriven(_drv(d=2, phase=1.0))
    for a, b in zip(unforced.moments(t), packet.moments(t)):
        assert np.allclose(a, b, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("kw", DRIVEN_CASES, ids=_ids)
def test_driven_mean_solves_the_forced_oscillator(kw):
    p = _drv(**kw)
    m, w, c, f0, W = p.mass, p.omega, p.center, p.force, p.drive_omega
    t = np.linspace(0.05, 3.0, 30)
    mean, var, dmean, dvar = p.moments(t)
    h = 1e-3
    assert np.allclose(_d5(lambda s: p.moments(s)[0], t, h), dmean, rtol=0, atol=1e-10)
    accel = _d5(lambda s: p.moments(s)[2], t, h)
    residual = m * accel + m * w * w * (mean - c) - f0 * np.sin(W * t)
    scale = abs(f0) + m * w * w * np.max(np.abs(mean - c)) + m * np.max(np.abs(accel))
    assert np.max(np.abs(residual)) < 1e-6 * scale
    m0, v0, dm0, dv0 = (float(a) for a in p.moments(0.0))
    assert m0 == 0.0 and dm0 == pytest.approx(p.hbar * p.phase / m, abs=1e-15)
    base = _undriven(p).moments(t)
    assert np.allclose(var, base[1], rtol=1e-14) and np.allclose(dvar, base[3], rtol=1e-14, atol=1e-16)


def _duhamel(t, w, W):
    """P(t) and P'(t) by quadrature of the Duhamel integrals."""
    s = (lambda u: u) if w == 0 else (lambda u: math.sin(w * u) / w)
    opts = dict(epsabs=1e-15, epsrel=1e-13, limit=200)
    p = quad(lambda r: s(t - r) * math.sin(W * r), 0, t, **opts)[0]
    dp = quad(lambda r: math.cos(w * (t - r)) * math.sin(W * r), 0, t, **opts)[0]
    return p, dp


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_forced_response_is_exact_and_continuous_through_resonance_and_omega_zero(monkeypatch):
    t = np.array([0.0, 0.01, 0.3, 1.0, 2.7, 6.0])
    cases = [(1.0, 2.0), (1.0, 1.0), (1.0, 1.0 + 1e-9), (1.0, 1.0 - 1e-7), (0.0, 2.0),
             (1e-9, 2.0), (3e-3, 2.0), (0.02, 0.5), (2.0, 0.0), (0.0, 0.0), (2.5, 0.7), (0.7, 3e-4)]
    for w, W in cases:
        P, dP = driven.forced_response(t, w, W)
        for k, tk in enumerate(t):
            q, dq = _duhamel(float(tk), w, W)
            assert P[k] == pytest.approx(q, abs=1e-14 * max(1.0, tk**3)), (w, W, tk)
            assert dP[k] == pytest.approx(dq, abs=1e-14 * max(1.0, tk**2)), (w, W, tk)
    # the moments are continuous across resonance and towards omega = 0
    tt = np.linspace(0, 5, 51)
    near = lambda a, b, tol: all(np.allclose(x, y, rtol=0, atol=tol) for x, y in zip(a, b))
    res = _drv(omega=1.0, drive_omega=1.0, phase=1.0).moments(tt)
    for W in (1.0 + 1e-9, 1.0 - 1e-9):
        assert near(_drv(omega=1.0, drive_omega=W, phase=1.0).moments(tt), res, 1e-6)
    free = _drv(omega=0.0, phase=1.0).moments(tt)
    for w in (1e-12, 1e-9):
        assert near(_drv(omega=w, phase=1.0).moments(tt), free, 1e-7)
    # the branches agree where both are accurate: omega t just around the switch, and the
    # kernels' series against their closed forms around |x| = 1
    s = np.linspace(5e-3, 5e-2, 50)
    monkeypatch.setattr(driven, "SMALL_OMEGA_T", 0.0)
    closed = driven.forced_response(s, 1.0, 2.0)[0]
    monkeypatch.setattr(driven, "SMALL_OMEGA_T", np.inf)
    series = driven.forced_response(s, 1.0, 2.0)[0]
    assert np.allclose(series, closed, rtol=1e-10, atol=0)
    x = np.linspace(0.5, 2.0, 31)
    for n in (1, 2, 3):
        monkeypatch.setattr(driven, "SMALL_X", 0.0)
        closed = driven._kernel(n, x)
        monkeypatch.setattr(driven, "SMALL_X", np.inf)
        assert np.allclose(driven._kernel(n, x), closed, rtol=1e-10, atol=0), n


def _nelson_residuals(p, x, t, grad_v):
    """Continuity and the u- and v-equations of DESIGN.md section 2 at points x (n, d) with
    per-point times t (n,), by central differences; grad_v is grad V at (x, t)."""
    ref = p.reference()
    n, d = x.shape
    hb, m = p.hbar, p.mass
    sd = np.sqrt(p.moments(t)[1])[:, None]
    hx, ht = 1e-4 * sd, 1e-3
    eye = np.eye(d)

    def grad(f):  # gradient of a scalar field (n,) -> (n, d)
        return np.stack([(f(x + hx * e) - f(x - hx * e)) / (2 * hx[:, 0]) for e in eye], -1)

    def div(g):  # divergence of a vector field at y
        return lambda y: sum((g(y + hx * e, t)[:, k] - g(y - hx * e, t)[:, k]) / (2 * hx[:, 0])
                             for k, e in enumerate(eye))

    drho = _d5(lambda s: ref.density(x, s), t, ht)
    cont = drho + div(lambda y, s: ref.density(y, s)[:, None] * ref.v(y, s))(x)
    du = _d5(lambda s: ref.u(x, s), t, ht)
    dv = _d5(lambda s: ref.v(x, s), t, ht)
    ru = du + grad(lambda y: (ref.u(y, t) * ref.v(y, t)).sum(-1)) + hb / (2 * m) * grad(div(ref.v))
    rv = dv - (-grad_v / m + 0.5 * grad(lambda y: (ref.u(y, t) ** 2).sum(-1))
               - 0.5 * grad(lambda y: (ref.v(y, t) ** 2).sum(-1)) + hb / (2 * m) * grad(div(ref.u)))
    scale_rho = np.max(np.abs(drho)) + 1e-300
    scale = np.max(np.abs(grad_v / m)) + np.max(np.abs(dv)) + np.max(np.abs(du)) + 1e-300
    return np.max(np.abs(cont)) / scale_rho, np.max(np.abs(ru)) / scale, np.max(np.abs(rv)) / scale


@pytest.mark.parametrize("kw", DRIVEN_CASES, ids=_ids)
def test_driven_gaussian_obeys_nelsons_equations_at_each_points_own_time(kw):
    """The Gaussian with the driven moments and the phase implied by v solves the Schrödinger
    equation with V(x, t): continuity, the u- and the v-equation vanish, with grad V evaluated at
    every point's own time in one call."""
    p = _drv(**kw)
    rng = np.random.default_rng(8)
    t = rng.uniform(0.1, 2.5, size=12)
    mean, var = p.moments(t)[:2]
    x = mean[:, None] + np.sqrt(var)[:, None] * rng.normal(size=(12, p.d))
    cont, ru, rv = _nelson_residuals(p, x, t, p.grad_potential(x, t))
    assert cont < 1e-6 and ru < 1e-6 and rv < 1e-6
    if p.force != 0 and p.drive_omega != 0:
        # the check has power: grad V at t = 0 (the force left out) fails it
        assert _nelson_residuals(p, x, t, p.grad_potential(x, 0.0))[2] > 1e-3


def test_driven_potential_takes_per_point_times_in_every_library():
    p = _drv(d=3, force=1.3, drive_omega=2.2)
    rng = np.random.default_rng(9)
    x = rng.normal(size=(6, 3))
    t = rng.uniform(0, 3, size=6)
    v_loop = np.array([p.potential(x[i], float(t[i])) for i in range(6)])
    g_loop = np.stack([p.grad_potential(x[i], float(t[i])) for i in range(6)])
    assert np.allclose(p.potential(x, t), v_loop, rtol=1e-14)
    assert np.allclose(p.grad_potential(x, t), g_loop, rtol=1e-14)
    trap = 0.5 * p.mass * p.omega**2 * ((x - p.center) ** 2).sum(-1)
    assert np.allclose(v_loop, trap - p.force * np.sin(p.drive_omega * t) * x.sum(-1))
    # the gradient is the potential's at nonzero, per-point times
    eps = 1e-6
    fd = np.stack([(p.potential(x + eps * e, t) - p.potential(x - eps * e, t)) / (2 * eps)
                   for e in np.eye(3)], -1)
    assert np.allclose(p.grad_potential(x, t), fd, atol=1e-7)
    # torch: tensor times, NumPy times and float times against tensor points
    xt, tt = torch.tensor(x), torch.tensor(t)
    for tv in (tt, t):
        assert isinstance(p.potential(xt, tv), torch.Tensor)
        assert np.allclose(p.potential(xt, tv).numpy(), v_loop, rtol=1e-14)
        assert np.allclose(p.grad_potential(xt, tv).numpy(), g_loop, rtol=1e-14)
    assert np.allclose(p.potential(xt, 0.4).numpy(), p.potential(x, 0.4), rtol=1e-14)
    xg = xt.clone().requires_grad_(True)
    g, = torch.autograd.grad(p.potential(xg, tt).sum(), xg)
    assert torch.allclose(g, p.grad_potential(xt, tt))
    # batch shape (2, 3) with times broadcast from (2, 1)
    xb = x.reshape(2, 3, 3)
    tb = np.array([[0.3], [1.7]])
    full = np.broadcast_to(tb, (2, 3))
    assert np.allclose(p.potential(xb, tb), p.potential(xb.reshape(6, 3), full.reshape(6)).reshape(2, 3))
    assert np.allclose(p.grad_potential(xb, tb),
                       p.grad_potential(xb.reshape(6, 3), full.reshape(6)).reshape(2, 3, 3))


def test_driven_potential_in_jax():
    jnp = pytest.importorskip("jax.numpy")
    p = _drv(d=2)
    rng = np.random.default_rng(10)
    x, t = rng.normal(size=(5, 2)), rng.uniform(0, 2, size=5)
    xj, tj = jnp.asarray(x), jnp.asarray(t)
    got_v, got_g = p.potential(xj, tj), p.grad_potential(xj, tj)
    assert type(got_v).__module__.startswith("jax") and type(got_g).__module__.startswith("jax")
    # JAX computes in float32 unless x64 is enabled (a process-wide switch this test leaves alone)
    assert np.allclose(np.asarray(got_v), p.potential(x, t), rtol=1e-5, atol=1e-6)
    assert np.allclose(np.asarray(got_g), p.grad_potential(x, t), rtol=1e-5, atol=1e-6)


def test_driven_sample_paths_match_the_moments_and_euler_maruyama():
    """Exact paths: marginals and lag covariances against a fine Euler–Maruyama simulation of
    dX = (v + u) dt + sqrt(hbar/m) dW with the exact drift (a strong osmotic term, so that the
    correlation in time is far from 1)."""
    p = _drv(hbar=0.2, sigma2=0.1, phase=1.0, force=2.0, drive_omega=3.0)
    ref = p.reference()
    times = np.array([0.0, 0.1, 0.25])
    n = 100_000
    paths = np.stack(list(ref.sample_paths(n, times, np.random.default_rng(11))))[..., 0]
    mean, var = ref.mean(times)[:, 0], ref.var(times)[:, 0]
    assert np.all(np.abs(paths.mean(1) - mean) < 4 * np.sqrt(var / n))
    assert np.all(np.abs(paths.var(1) - var) < 4 * var * math.sqrt(2 / n))

    n_em, dt = 40_000, 2.5e-4
    rng = np.random.default_rng(12)
    x = p.sample_x0(n_em, rng)
    em = [x[:, 0].copy()]
    noise = math.sqrt(p.hbar / p.mass * dt)
    steps = np.rint(times / dt).astype(int)
    for k in range(steps[-1]):
        s = k * dt
        x = x + (ref.v(x, s) + ref.u(x, s)) * dt + noise * rng.standard_normal(x.shape)
        if k + 1 in steps:
            em.append(x[:, 0].copy())
    em = np.stack(em)

    def cov(a, b):
        da, db = a - a.mean(), b - b.mean()
        prod = da * db
        return prod.mean(), prod.std() / math.sqrt(len(a))

    for i, j in ((0, 2), (1, 2), (0, 1)):
        c_exact, se_exact = cov(paths[i], paths[j])
        c_em, se_em = cov(em[i], em[j])
        assert abs(c_exact - c_em) < 4 * math.hypot(se_exact, se_em) + 1e-3 * var[j]
    corr = cov(paths[0], paths[2])[0] / math.sqrt(var[0] * var[2])
    assert corr < 0.9  # the lag covariance is a real test, not var * 1


def test_driven_energy_is_the_nelson_energy_and_changes_by_the_work_of_the_force():
    p = _drv(d=2, omega=1.3, drive_omega=0.4, hbar=0.05, force=2.0, phase=1.0)
    ref = p.reference()
    assert p.exact_energy(0.0) == pytest.approx(_undriven(p).exact_energy(), rel=1e-14)
    for t in (0.0, 0.8):
        y = ref.sample(200_000, np.array([t]), np.random.default_rng(13))[0]
        e = 0.5 * p.mass * ((ref.u(y, t) ** 2).sum(-1) + (ref.v(y, t) ** 2).sum(-1)) + p.potential(y, t)
        assert e.mean() == pytest.approx(p.exact_energy(t), abs=4 * e.std() / math.sqrt(len(e)))
    # d<H>/dt = <dV/dt> = -d F0 Omega cos(Omega t) <x>
    for t in (0.3, 1.1, 2.0):
        de = _d5(p.exact_energy, t, 1e-3)
        mean = float(p.moments(t)[0])
        work = -p.d * p.force * p.drive_omega * math.cos(p.drive_omega * t) * mean
        assert de == pytest.approx(work, rel=1e-7, abs=1e-12)


def test_driven_grid_hint_covers_the_driven_motion():
    p = _drv(force=3.0, omega=1.0, drive_omega=1.0, t_final=4.0)  # resonant, large excursion
    hint, still = p.grid_hint(), _undriven(p).grid_hint()
    t = np.linspace(0, p.t_final, 401)
    mean, var, dmean, _ = p.moments(t)
    assert np.all(mean - 5.5 * np.sqrt(var) >= hint.lo[0] - 1e-12)
    assert np.all(mean + 5.5 * np.sqrt(var) <= hint.hi[0] + 1e-12)
    assert hint.hi[0] > still.hi[0] + 1.0
    assert hint.k_max >= p.mass / p.hbar * np.max(np.abs(dmean)) > still.k_max
    assert hint.e_spread == pytest.approx(still.e_spread)
