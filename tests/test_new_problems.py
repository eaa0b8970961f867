"""The superposition and driven-packet problems: exact references checked against quadrature,
finite differences of the equations they solve and a brute-force simulation."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad, trapezoid
from scipy.special import ndtr

import problems
from core import ParameterError
from problems import driven

# --- superposition ---------------------------------------------------------------------------
#: Non-default parameters, so that every factor of hbar, m, omega and c is exercised.
SUP = dict(hbar=0.2, mass=0.8, omega=1.7, center=0.3)


def _sup(d=1, **kw):
    return problems.get("superposition", d=d, **dict(SUP, **kw))


def _ks(samples, cdf):
    """sqrt(n) times the Kolmogorov–Smirnov distance between samples and a CDF."""
    xs = np.sort(samples)
    n = len(xs)
    f = cdf(xs)
    d = max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))
    return math.sqrt(n) * d


def test_superposition_defaults_and_validation():
    p = problems.get("superposition")
    assert p.params() == dict(d=1, hbar=0.1, mass=1.0, omega=1.0, center=0.0, t_final=math.pi)
    assert problems.get("superposition", d=40).d == 40
    for bad in (dict(d=0), dict(omega=0.0), dict(hbar=-1.0), dict(mass=0.0), dict(t_final=0.0)):
        with pytest.raises(ParameterError):
            problems.get("superposition", **bad)
    ref = p.reference()
    assert ref.kind == "exact" and ref.has_observables and ref.has_velocities and ref.has_samples
    assert not ref.has_paths
    with pytest.raises(NotImplementedError):
        next(ref.sample_paths(4, np.array([0.0]), np.random.default_rng(0)))
    inv = _sup(d=3).invariants()
    assert inv.energy_conserved and inv.energy == pytest.approx(4 * 0.2 * 1.7 / 2)
    assert not inv.zero_mean and inv.com_var is None


def test_superposition_moments_by_quadrature_of_the_density():
    """Normalisation, means, variances and Var((x0 + x1)/2) of the 2-D exact density by the
    trapezoidal rule (spectrally accurate for these fast-decaying smooth functions)."""
    p = _sup(d=2)
    ref = p.reference()
    l, c, w = p.ell, p.center, p.omega
    axis = c + l * np.linspace(-11, 11, 441)
    mesh = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    times = np.array([0.0, 0.4, math.pi / (2 * w), 1.3, math.pi / w])
    integ = lambda f: trapezoid(trapezoid(f, axis, axis=1), axis, axis=0)
    mean, var, com = ref.mean(times), ref.var(times), ref.com_var(times)
    assert np.allclose(mean[:, 0], c + l * np.cos(w * times))
    assert np.allclose(var[:, 0], 2 * l * l - l * l * np.cos(w * times) ** 2)
    for k, t in enumerate(times):
        rho = ref.density(mesh, t)
        assert integ(rho) == pytest.approx(1.0, abs=1e-10)
        for i in range(2):
            m_i = integ(rho * mesh[..., i])
            assert m_i == pytest.approx(mean[k, i], abs=1e-9)
            assert integ(rho * (mesh[..., i] - m_i) ** 2) == pytest.approx(var[k, i], abs=1e-9)
        xbar = mesh.mean(-1)
        mb = integ(rho * xbar)
        assert integ(rho * (xbar - mb) ** 2) == pytest.approx(com[k], abs=1e-9)


def test_superposition_marginal_and_pair_cdfs_by_quadrature():
    p = _sup(d=2)
    ref, ref1 = p.reference(), _sup(d=1).reference()
    l, c = p.ell, p.center
    times = np.array([0.0, 0.7, math.pi / p.omega])
    xs = c + l * np.array([-3.0, -1.0, -0.2, 0.6, 2.5])
    zs = l * np.array([-4.0, -1.1, 0.0, 0.9, 3.0])
    cdf0, cdf1 = ref.marginal_cdf(0, xs, times), ref.marginal_cdf(1, xs, times)
    pair = ref.pair_cdf(zs, times)
    rho1 = lambda s, t: float(ref1.density(np.array([[s]]), t)[0])
    for k, t in enumerate(times):
        for j, x in enumerate(xs):
            q, _ = quad(rho1, -np.inf, x, args=(t,), epsabs=1e-14, epsrel=1e-12)
            assert cdf0[k, j] == pytest.approx(q, abs=1e-10)
        assert np.allclose(cdf1[k], ndtr((xs - c) / l), atol=1e-15)
        for j, z in enumerate(zs):
            # P(x0 - x1 <= z) = E_{x0}[P(x1 >= x0 - z)], x1 in the ground state
            q, _ = quad(lambda s: rho1(s, t) * ndtr(-(s - z - c) / l), -np.inf, np.inf,
                        epsabs=1e-14, epsrel=1e-12)
            assert pair[k, j] == pytest.approx(q, abs=1e-10)
    with pytest.raises(NotImplementedError):
        ref1.pair_cdf(zs, times)


def test_superposition_has_nodes_at_multiples_of_pi_over_omega():
    p = _sup(d=1)
    ref = p.reference()
    l, c, w = p.ell, p.center, p.omega
    assert p.node(0) == (0.0, c - l)
    assert p.node(1) == pytest.approx((math.pi / w, c + l))
    for k in (0, 1, 2):
        t, x = p.node(k)
        rho = ref.density(np.array([[x]]), t)[0]
        near = ref.density(np.array([[x - 0.1 * l], [x + 0.1 * l]]), t)
        assert rho < 1e-28 * near.min() and near.min() > 1e-3
        # psi changes sign across the node
        psi = ref.psi(np.array([[x - 0.1 * l], [x + 0.1 * l]]), t)
        assert (psi[0] * np.conj(psi[1])).real < 0
    # psi0 is real and negative beyond its node; log rho0 is -inf and u0 has a pole there
    x0 = np.array([[c - l - 0.05 * l], [c - l + 0.05 * l]])
    assert np.allclose(p.phase0(x0), [math.pi, 0.0])
    assert np.allclose(p.psi0(x0).imag, 0.0, atol=1e-15) and p.psi0(x0)[0].real < 0 < p.psi0(x0)[1].real
    at_node = problems.get("superposition", hbar=0.5, omega=1.0, mass=1.0, center=0.0)  # l = 1/2
    node = np.array([[-0.5]])
    assert at_node.log_rho0(node)[0] == -np.inf and np.isinf(at_node.u0(node)[0, 0])
    assert np.isnan(at_node.reference().u(node, 0.0)[0, 0])  # 0/0 exactly at the node, documented
    # between nodes the density is bounded below by sin^2(omega t) / 2 times the ground state's
    x = c + l * np.linspace(-4, 4, 801)[:, None]
    for t in (0.3, math.pi / (2 * w), 1.5):
        ground = np.exp(-0.5 * ((x[:, 0] - c) / l) ** 2) / math.sqrt(2 * math.pi * l * l)
        assert np.all(ref.density(x, t) >= 0.5 * math.sin(w * t) ** 2 * ground * (1 - 1e-12))


def test_superposition_velocities_are_finite_differences_of_log_rho_and_phase():
    p = _sup(d=2)
    ref = p.reference()
    l, c, hb, m = p.ell, p.center, p.hbar, p.mass
    x = c + l * np.array([[-2.5, 0.4], [-0.5, -1.2], [0.3, 2.0], [1.7, 0.0], [3.0, -0.7]])
    h = 1e-5 * l
    for t in (0.0, 0.35, 1.1, math.pi / p.omega - 0.2):
        u, v = ref.u(x, t), ref.v(x, t)
        for k in range(2):
            e = h * np.eye(2)[k]
            dlog = (np.log(ref.density(x + e, t)) - np.log(ref.density(x - e, t))) / (2 * h)
            # the phase's difference as the angle of psi(x+h) conj(psi(x-h)): no branch cut
            dphase = np.angle(ref.psi(x + e, t) * np.conj(ref.psi(x - e, t))) / (2 * h)
            assert np.allclose(u[:, k], hb / (2 * m) * dlog, rtol=1e-6, atol=1e-9)
            assert np.allclose(v[:, k], hb / m * dphase, rtol=1e-6, atol=1e-9)
    # at t = 0 the reference is the initial state
    assert np.allclose(ref.u(x, 0.0), p.u0(x)) and np.allclose(ref.v(x, 0.0), p.v0(x))
    assert np.allclose(ref.density(x, 0.0), np.exp(p.log_rho0(x)))
    assert np.allclose(ref.psi(x, 0.0), p.psi0(x))
    assert np.allclose(np.abs(ref.psi(x, 0.9)) ** 2, ref.density(x, 0.9))


def test_superposition_psi_solves_the_schrodinger_equation():
    """i hbar psi_t = -(hbar^2/2m) Lap psi + V psi by central differences in x and t."""
    p = _sup(d=2)
    ref = p.reference()
    l, hb, m = p.ell, p.hbar, p.mass
    x = p.center + l * np.random.default_rng(2).normal(size=(10, 2)) * 1.5
    hx, ht = 1e-3 * l, 1e-4 / p.omega

    def residual(psi, t):
        dt = (psi(x, t + ht) - psi(x, t - ht)) / (2 * ht)
        lap = sum(psi(x + hx * e, t) - 2 * psi(x, t) + psi(x - hx * e, t) for e in np.eye(2)) / hx**2
        kin, pot = -hb * hb / (2 * m) * lap, p.potential(x) * psi(x, t)
        scale = np.max(np.abs(kin)) + np.max(np.abs(pot))
        return np.max(np.abs(1j * hb * dt - kin - pot)) / scale

    for t in (0.2, 1.0, 2.5, math.pi / p.omega):
        assert residual(ref.psi, t) < 1e-6
    # the check has power: the time-reversed wave function (E -> -E) fails it
    assert residual(lambda y, s: np.conj(ref.psi(y, s)), 1.0) > 0.1


def test_superposition_exact_samples_match_the_exact_law():
    p = _sup(d=2)
    ref = p.reference()
    times = np.array([0.0, 0.5, math.pi / (2 * p.omega), math.pi / p.omega])
    n = 100_000
    xs = ref.sample(n, times, np.random.default_rng(3))
    assert xs.shape == (4, n, 2)
    mean, var = ref.mean(times), ref.var(times)
    dev = xs - xs.mean(1, keepdims=True)
    se_mean = xs.std(1) / math.sqrt(n)
    se_var = np.sqrt(((dev**4).mean(1) - xs.var(1) ** 2) / n)
    assert np.all(np.abs(xs.mean(1) - mean) < 4 * se_mean)
    assert np.all(np.abs(xs.var(1) - var) < 4 * se_var)
    for k, t in enumerate(times):
        tt = np.array([t])
        assert _ks(xs[k, :, 0], lambda y: ref.marginal_cdf(0, y, tt)[0]) < 1.8
        assert _ks(xs[k, :, 0] - xs[k, :, 1], lambda z: ref.pair_cdf(z, tt)[0]) < 1.8
    # the initial sampler, NumPy and torch (the Stein identity check is in test_problems.py)
    t0 = np.array([0.0])
    cdf0 = lambda y: ref.marginal_cdf(0, y, t0)[0]
    x_np = p.sample_x0(n, np.random.default_rng(4))
    x_t = p.sample_x0(n, torch.Generator().manual_seed(4), dtype=torch.float64)
    x_32 = p.sample_x0(1000, torch.Generator().manual_seed(4), dtype=torch.float32)
    assert x_t.dtype == torch.float64 and x_32.dtype == torch.float32 and x_32.shape == (1000, 2)
    for x in (x_np, x_t.numpy()):
        assert _ks(x[:, 0], cdf0) < 1.8
        assert _ks(x[:, 1], lambda y: ndtr((y - p.center) / p.ell)) < 1.8


def test_superposition_d3_other_coordinates_are_ground_states():
    p, p1 = _sup(d=3), _sup(d=1)
    ref, ref1 = p.reference(), p1.reference()
    l, c, w = p.ell, p.center, p.omega
    times = np.array([0.0, 0.9, 2.0])
    assert np.allclose(ref.mean(times)[:, 1:], c) and np.allclose(ref.var(times)[:, 1:], l * l)
    assert np.allclose(ref.mean(times)[:, :1], ref1.mean(times))
    assert np.allclose(ref.com_var(times), (ref1.var(times)[:, 0] + 2 * l * l) / 9)
    xs = c + l * np.linspace(-3, 3, 7)
    for k in (1, 2):
        assert np.allclose(ref.marginal_cdf(k, xs, times), ndtr((xs - c) / l)[None, :])
    x = c + l * np.random.default_rng(5).normal(size=(8, 3))
    for t in (0.0, 0.9):
        ground = np.prod(np.exp(-0.5 * ((x[:, 1:] - c) / l) ** 2) / math.sqrt(2 * math.pi * l * l), -1)
        assert np.allclose(ref.density(x, t), ref1.density(x[:, :1], t) * ground)
        assert np.allclose(ref.u(x, t)[:, 1:], -w * (x[:, 1:] - c))
        assert np.allclose(ref.u(x, t)[:, :1], ref1.u(x[:, :1], t))
        assert np.allclose(ref.v(x, t)[:, 1:], 0.0)
        assert np.allclose(ref.v(x, t)[:, :1], ref1.v(x[:, :1], t))
    # Nelson's energy E[m/2 (|u|^2 + |v|^2) + V] is (d + 1) hbar omega / 2, away from the nodes
    # (at a node its Monte Carlo estimate has infinite variance)
    t = math.pi / (2 * w)
    y = ref.sample(200_000, np.array([t]), np.random.default_rng(6))[0]
    e = 0.5 * p.mass * ((ref.u(y, t) ** 2).sum(-1) + (ref.v(y, t) ** 2).sum(-1)) + p.potential(y)
    assert e.mean() == pytest.approx(p.exact_energy(), abs=4 * e.std() / math.sqrt(len(e)))
    assert p.exact_energy() == pytest.approx(2 * p.hbar * w)


def test_superposition_torch_matches_numpy_with_per_point_times():
    p = _sup(d=2)
    ref = p.reference()
    rng = np.random.default_rng(7)
    x = p.center + p.ell * rng.normal(size=(6, 2))
    t = rng.uniform(0.1, 3.0, size=6)
    xt, tt = torch.tensor(x), torch.tensor(t)
    for fn in ("potential", "grad_potential", "log_rho0", "phase0", "u0", "v0"):
        got = getattr(p, fn)(xt)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        assert np.allclose(got.numpy(), getattr(p, fn)(x), rtol=1e-12, atol=1e-12), fn
    for fn in ("u", "v", "density", "psi"):
        loop = np.stack([getattr(ref, fn)(x[i], float(t[i])) for i in range(6)])
        assert np.allclose(getattr(ref, fn)(x, t), loop, rtol=1e-12, atol=1e-14), fn
        got = getattr(ref, fn)(xt, tt)
        assert isinstance(got, torch.Tensor)
        assert np.allclose(got.numpy(), loop, rtol=1e-12, atol=1e-14), fn
    # autograd agrees with the closed-form osmotic velocity
    xg = xt.clone().requires_grad_(True)
    g, = torch.autograd.grad(torch.log(ref.density(xg, tt)).sum(), xg)
    assert torch.allclose(p.hbar / (2 * p.mass) * g, ref.u(xt, tt))


def test_superposition_grid_hint_holds_the_state():
    p = problems.get("superposition", d=2)
    ref, hint = p.reference(), p.grid_hint()
    times = np.linspace(0, p.t_final, 201)
    tail = ndtr(-5.5) * (1 + 1e-6)  # the packet's box: 5.5 standard deviations
    for k in range(2):
        assert np.all(ref.marginal_cdf(k, np.array([hint.lo[k]]), times) <= tail)
        assert np.all(1 - ref.marginal_cdf(k, np.array([hint.hi[k]]), times) <= tail)
    # the box is wider than the ground state's in the superposed coordinate (heavier tails)
    assert hint.hi[0] - hint.lo[0] > hint.hi[1] - hint.lo[1]
    # the momentum distribution beyond k_max is negligible at every t (the spectrum turns with
    # the oscillator, and has the same heavier tails as the density): FFT of psi along x_1
    x = np.linspace(p.center - 14 * p.ell, p.center + 14 * p.ell, 2048, endpoint=False)
    k = 2 * np.pi * np.fft.fftfreq(len(x), x[1] - x[0])
    ref1 = problems.get("superposition").reference()
    for t in np.linspace(0, math.pi, 9):
        power = np.abs(np.fft.fft(ref1.psi(x[:, None], t))) ** 2
        # no more than a ground state's mass beyond the packet's cut at ENVELOPE_SDS = 6
        assert power[np.abs(k) > hint.k_max].sum() / power.sum() < 2 * ndtr(-6.0)
    # the energy spread: psi0 has weight 1/2 on phi0 (E0) and 1/2 on phi1 (E1 = E0 + hbar omega)
    l = p.ell
    phi0 = lambda y: (2 * math.pi * l * l) ** -0.25 * np.exp(-((y - p.center) / (2 * l)) ** 2)
    psi0 = lambda y: p.psi0(np.array([[y, p.center]])).real[0] / phi0(p.center)
    w0 = quad(lambda y: psi0(y) * phi0(y), -np.inf, np.inf)[0] ** 2
    w1 = quad(lambda y: psi0(y) * phi0(y) * (y - p.center) / l, -np.inf, np.inf)[0] ** 2
    assert (w0, w1) == pytest.approx((0.5, 0.5), abs=1e-10)
    assert hint.e_spread == pytest.approx(math.sqrt(w0 * w1) * p.hbar * p.omega)


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
