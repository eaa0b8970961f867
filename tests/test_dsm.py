"""DSM: residuals of exact solutions vanish in every mode, derivatives are right, Hutchinson is
unbiased, trajectories follow the exact law, and the solver's training loop behaves."""

import math

import numpy as np
import pytest
import torch

import problems
from core import ParameterError
from solvers.base import FreeClock
import solvers
from solvers.dsm import DSM
from solvers.dsm.evaluation import eval_grid
from solvers.dsm.equations import residuals
from solvers.dsm.networks import TwinMLP
from solvers.dsm.sampling import select_points, simulate

F64 = torch.float64
MODES = [
    ("divergence", "func", "exact"),
    ("divergence", "loop", "exact"),
    ("nelson", "func", "exact"),
    ("nelson", "loop", "exact"),
    ("divergence", "func", "hutchinson"),
]
MODE_IDS = ["-".join(m) for m in MODES]


def _res(uv, x, t, grad_v, hbar, mass, mode, **kw):
    eq, der, div = mode
    return residuals(uv, x, t, grad_v, hbar=hbar, mass=mass, equations=eq, derivatives=der,
                     divergence=div, probes=2, **kw)


# --- exact solutions make the residuals vanish -------------------------------------------------
PACKETS = [("harmonic_1d_moving", {}), ("singular_1d", {}),
           ("harmonic_nd", {"d": 3, "phase": 2.0, "omega": 1.5, "hbar": 0.2})]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name, kw", PACKETS, ids=[p[0] for p in PACKETS])
def test_exact_packet_velocities_have_zero_residuals(name, kw, mode):
    p = problems.get(name, **kw)
    ref = p.reference()
    gen = torch.Generator().manual_seed(0)
    t = 0.05 + 0.9 * torch.rand(9, generator=gen, dtype=F64)
    mean, var = p.moments(t)[:2]
    x = mean[:, None] + var.sqrt()[:, None] * torch.randn(9, p.d, generator=gen, dtype=F64)
    r = _res(lambda a, b, s: (ref.u(a, s), ref.v(b, s)), x, t, p.grad_potential(x), p.hbar,
             p.mass, mode)
    scale = float(p.grad_potential(x).abs().max()) / p.mass + 1.0
    for key in ("ru1", "ru2", "rv1", "rv2"):
        assert float(r[key].detach().abs().max()) < 1e-10 * scale, key


def _superposition(hbar, mass, omega):
    """Each coordinate in (phi0 + phi1)/sqrt 2 of the trap x^2 m omega^2 / 2: u, v nonlinear."""
    alpha = math.sqrt(2 * mass * omega / hbar)

    def uv(xu, xv, t):
        tt = t[..., None] if t.dim() > 0 else t

        def parts(x):
            den = 1 + 2 * alpha * x * torch.cos(omega * tt) + alpha**2 * x * x
            u = (hbar / (2 * mass)) * (-2 * mass * omega * x / hbar
                                       + 2 * alpha * (torch.cos(omega * tt) + alpha * x) / den)
            v = -(hbar / mass) * alpha * torch.sin(omega * tt) / den
            return u, v

        return parts(xu)[0], parts(xv)[1]

    return uv


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("d", [1, 3])
def test_nonlinear_exact_state_has_zero_residuals_and_a_sign_error_does_not(mode, d):
    """Unlike a Gaussian packet, this state has grad(div u) and Laplacian(u) nonzero, so every
    second-order term is exercised."""
    hbar, mass, omega = 0.3, 1.3, 0.8
    uv = _superposition(hbar, mass, omega)
    gen = torch.Generator().manual_seed(1)
    x = 0.5 * torch.randn(8, d, generator=gen, dtype=F64)
    t = torch.rand(8, generator=gen, dtype=F64)
    grad_v = mass * omega**2 * x
    r = _res(uv, x, t, grad_v, hbar, mass, mode)
    r = {k: v.detach() for k, v in r.items()}
    assert float(r["ru1"].abs().max()) < 1e-9 and float(r["rv1"].abs().max()) < 1e-9
    wrong = _res(uv, x, t, grad_v, -hbar, mass, mode)  # the hbar/2m terms with the wrong sign
    wrong = {k: v.detach() for k, v in wrong.items()}
    assert float(wrong["ru1"].abs().max()) > 1e-2 and float(wrong["rv1"].abs().max()) > 1e-2


# --- derivatives against finite differences and against each other ---------------------------
def _random_net(d, seed=0, width=16):
    torch.manual_seed(seed)
    net = TwinMLP(d, width, 2, dtype=F64)
    with torch.no_grad():  # non-trivial outputs
        for w in net.weights:
            w.mul_(1.5)
    return net


def test_func_derivatives_match_finite_differences():
    d = 3
    net = _random_net(d)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, d, generator=gen, dtype=F64)
    t = torch.rand(4, generator=gen, dtype=F64)
    from solvers.dsm.equations import _exact_func
    got = _exact_func(lambda a, b, s: net(a, b, s), x, t, nelson=True)
    h = 1e-5

    def u_of(xx, tt):
        return net(xx, xx, tt)[0]

    def v_of(xx, tt):
        return net(xx, xx, tt)[1]

    eye = torch.eye(d, dtype=F64)
    with torch.no_grad():
        ju = torch.stack([(u_of(x + h * e, t) - u_of(x - h * e, t)) / (2 * h) for e in eye], -1)
        dtv = (v_of(x, t + h) - v_of(x, t - h)) / (2 * h)

        def div_u(xx):
            return sum((u_of(xx + h * e, t)[:, k] - u_of(xx - h * e, t)[:, k]) / (2 * h)
                       for k, e in enumerate(eye))

        hh = 1e-4
        gdu = torch.stack([(div_u(x + hh * e) - div_u(x - hh * e)) / (2 * hh) for e in eye], -1)
        lap = sum((u_of(x + hh * e, t) - 2 * u_of(x, t) + u_of(x - hh * e, t)) / hh**2 for e in eye)
    assert torch.allclose(got["ju"].detach(), ju, atol=1e-8)
    assert torch.allclose(got["dtv"].detach(), dtv, atol=1e-8)
    assert torch.allclose(got["gdu"].detach(), gdu, atol=1e-5)
    assert torch.allclose(got["lap_u"].detach(), lap, atol=1e-5)


@pytest.mark.parametrize("equations", ["divergence", "nelson"])
def test_func_and_loop_modes_agree_including_parameter_gradients(equations):
    d = 2
    net = _random_net(d, seed=3)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, d, generator=gen, dtype=F64)
    t = torch.rand(6, generator=gen, dtype=F64)
    grad_v = x.clone()
    out, grads = {}, {}
    for der in ("func", "loop"):
        r = residuals(lambda a, b, s: net(a, b, s), x, t, grad_v, hbar=0.1, mass=1.0,
                      equations=equations, derivatives=der)
        loss = (r["ru1"] ** 2).sum() + (r["rv1"] ** 2).sum()
        net.zero_grad()
        loss.backward()
        out[der] = (r["ru1"].detach(), r["rv1"].detach())
        grads[der] = [p.grad.clone() for p in net.parameters()]
    assert torch.allclose(out["func"][0], out["loop"][0], atol=1e-12)
    assert torch.allclose(out["func"][1], out["loop"][1], atol=1e-12)
    for a, b in zip(grads["func"], grads["loop"]):
        assert torch.allclose(a, b, atol=1e-10)


def test_nelson_and_divergence_forms_differ_for_non_gradient_fields():
    net = _random_net(2, seed=4)
    x = torch.randn(5, 2, dtype=F64)
    t = torch.rand(5, dtype=F64)
    a = residuals(lambda p, q, s: net(p, q, s), x, t, x, hbar=0.1, mass=1.0, equations="divergence")
    b = residuals(lambda p, q, s: net(p, q, s), x, t, x, hbar=0.1, mass=1.0, equations="nelson")
    assert torch.allclose(a["ru1"], b["ru1"])  # the u-equation is the same in both forms
    assert not torch.allclose(a["rv1"], b["rv1"], atol=1e-6)


def test_hutchinson_is_unbiased_within_its_standard_error():
    """The mean of many independent estimates approaches the exact residual, and the product of
    the two independent factors estimates |r|^2 without the variance bias of a square."""
    d = 4
    net = _random_net(d, seed=5)
    x = torch.randn(3, d, dtype=F64).repeat(4000, 1)  # the same 3 points, 4000 probe draws each
    t = torch.rand(3, dtype=F64).repeat(4000)
    gen = torch.Generator().manual_seed(6)
    kw = dict(hbar=0.5, mass=1.0)
    exact = residuals(lambda a, b, s: net(a, b, s), x[:3], t[:3], x[:3], **kw)
    est = residuals(lambda a, b, s: net(a, b, s), x, t, x, divergence="hutchinson", probes=1,
                    generator=gen, **kw)
    for key_est, key_exact in (("ru1", "ru1"), ("rv2", "rv1")):
        samples = est[key_est].detach().reshape(4000, 3, d)
        mean, se = samples.mean(0), samples.std(0) / math.sqrt(4000)
        z = (mean - exact[key_exact].detach()) / se
        assert float(z.abs().max()) < 4.5, key_est
        assert float(se.max()) > 0  # the estimate is genuinely random
    prod = (est["ru1"] * est["ru2"]).sum(-1).detach().reshape(4000, 3)
    sq = (est["ru1"] ** 2).sum(-1).detach().reshape(4000, 3)
    target = (exact["ru1"] ** 2).sum(-1).detach()
    z = (prod.mean(0) - target) / (prod.std(0) / math.sqrt(4000))
    assert float(z.abs().max()) < 4.5
    # the naive square is biased upwards by the estimate's variance
    zsq = (sq.mean(0) - target) / (sq.std(0) / math.sqrt(4000))
    assert float(zsq.min()) > 2 and float(zsq.max()) > 6


# --- trajectories ---------------------------------------------------------------------------
class _ExactDrift:
    def __init__(self, ref):
        self.ref = ref

    def drift(self, x, t, nu):
        u, v = self.ref.u(x, t), self.ref.v(x, t)
        return v + nu * u, u


@pytest.mark.parametrize("nu", [1.0, 0.0])
def test_simulation_with_exact_velocities_follows_the_exact_law(nu):
    p = problems.get("harmonic_1d_moving")
    ref = p.reference()
    times = torch.linspace(0, 1, 201, dtype=F64)
    gen = torch.Generator().manual_seed(7)
    x0 = p.sample_x0(20000, gen, dtype=F64)
    xs, drifts = simulate(_ExactDrift(ref), x0, times, nu, math.sqrt(nu * p.hbar / p.mass), gen)
    assert xs.shape == (201, 20000, 1) and drifts.shape == (200, 20000, 1)
    var = xs[::20, :, 0].var(1).numpy()
    exact = ref.var(times[::20].numpy())[:, 0]
    assert np.allclose(var, exact, rtol=0.05)


def test_training_points():
    times = torch.linspace(0, 1, 51)
    gen = torch.Generator().manual_seed(8)
    xs = torch.randn(51, 10, 2)
    drifts = torch.zeros(50, 10, 2)
    x, t = select_points(xs, drifts, times, "grid", 0, 0.1, gen)
    assert x.shape == (510, 2) and t.shape == (510,)
    x, t = select_points(xs, drifts, times, "random", 7, 0.0, gen)
    assert x.shape == (70, 2) and float(t.min()) >= 0 and float(t.max()) <= 1
    # with no drift and no noise the points are the trajectories' grid points, at jittered times
    assert all(any(torch.allclose(row, xs[i, j]) for i in range(51)) for j, row in
               zip(torch.arange(10).repeat_interleave(7), x))
    with pytest.raises(ValueError):
        select_points(xs, drifts, times, "random", 51, 0.0, gen)


# --- the solver -------------------------------------------------------------------------------
QUICK = dict(DSM.quick_params)


def _solver(params=None, problem="harmonic_1d", seed=0, workdir=None, **pkw):
    s = solvers.get("dsm", **dict(QUICK, **(params or {})))
    p = problems.get(problem, **pkw)
    s.setup(p, times=np.linspace(0, p.t_final, 11), seed=seed, workdir=workdir)
    return s, p


@pytest.mark.parametrize("initial_condition", [
    pytest.param("loss", marks=pytest.mark.slow),  # 200 iterations: 10 s; the default runs fast
    "built_in"])
def test_training_lowers_the_loss_and_is_repeatable(initial_condition):
    params = {"iterations": 100, "lr": 3e-3, "initial_condition": initial_condition}
    a, _ = _solver(params)
    a.run(FreeClock())
    b, _ = _solver(params)
    b.run(FreeClock())
    assert a.history["loss"] == b.history["loss"]
    assert np.mean(a.history["loss"][-10:]) < 0.5 * np.mean(a.history["loss"][:5])
    assert len(a.iteration_times) == 100 and a.iterations == 100


def test_observables_and_velocities():
    s, p = _solver({"iterations": 5, "keep_coords": 2}, problem="harmonic_nd", d=3)
    s.run(FreeClock())
    obs = s.evaluate()
    assert obs.mean.shape == obs.var.shape == (11, 3)
    assert obs.samples.shape == (11, QUICK["eval_samples"], 2) and obs.n_samples == QUICK["eval_samples"]
    assert obs.com_var.shape == (11,) and np.all(np.isfinite(obs.energy))
    u, v = obs.velocity(np.zeros((7, 3)), 0.5)
    assert u.shape == v.shape == (7, 3)
    # the record times are on the evaluation grid, and t = 0 is the initial law
    assert np.allclose(obs.var[0], p.sigma2, rtol=0.1)


def test_built_in_initial_condition_holds_exactly():
    s, p = _solver({"initial_condition": "built_in", "iterations": 3}, problem="harmonic_1d_moving")
    s.run(FreeClock())
    x = torch.linspace(-1, 1, 9)[:, None]
    u, v = s.net(x, x, torch.zeros(9))
    assert torch.allclose(u, p.u0(x), atol=1e-7) and torch.allclose(v, p.v0(x), atol=1e-7)


def test_float64_takes_effect():
    s, _ = _solver({"dtype": "float64", "iterations": 2})
    s.run(FreeClock())
    assert all(p.dtype == torch.float64 for p in s.net.parameters())
    assert s.evaluate().samples.dtype == np.float64


def test_nan_loss_fails_with_the_iteration(monkeypatch):
    s, _ = _solver({"iterations": 10, "chunk_points": 7})  # several chunks per iteration
    real = s.residual_loss
    calls = {"n": 0}
    chunks = math.ceil(QUICK["batch"] * QUICK["points"] / 7)

    def poisoned(*a, **k):
        calls["n"] += 1
        total, terms = real(*a, **k)
        return (total * float("nan") if calls["n"] == 3 * chunks + 2 else total), terms

    monkeypatch.setattr(s, "residual_loss", poisoned)
    with pytest.raises(FloatingPointError, match="iteration 4"):
        s.run(FreeClock())


def test_chunked_gradients_equal_the_whole_batch():
    a, _ = _solver({"iterations": 3, "chunk_points": 0, "dtype": "float64"})
    b, _ = _solver({"iterations": 3, "chunk_points": 13, "dtype": "float64"})
    a.run(FreeClock())
    b.run(FreeClock())
    assert np.allclose(a.history["loss"], b.history["loss"], rtol=1e-10)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.allclose(pa, pb, atol=1e-10)


@pytest.mark.parametrize("x_norm", ["box", "paths"])
def test_checkpoint_and_resume(tmp_path, x_norm):
    """An interrupted run resumed from its checkpoint continues exactly as an uninterrupted one
    (networks, optimiser and random state are all restored, and the running path statistics
    with ``x_norm=paths``).  A constant schedule keeps the learning rate independent of the
    iteration budget."""
    const = {"schedule": "constant", "checkpoint_every": 4, "x_norm": x_norm}
    a, _ = _solver(dict(const, iterations=12), workdir=tmp_path / "a")
    a.run(FreeClock())
    b, _ = _solver(dict(const, iterations=8), workdir=tmp_path / "b")
    b.run(FreeClock())
    c, _ = _solver(dict(const, iterations=12, resume=True), workdir=tmp_path / "b")
    assert c.resumed_from == 8
    c.run(FreeClock())
    assert c.iterations == 12 and len(c.history["loss"]) == 12
    assert c.history["loss"][:8] == b.history["loss"]
    assert np.allclose(c.history["loss"], a.history["loss"], rtol=1e-6)


def test_time_limit_stops_training():
    s, p = _solver({"iterations": 10_000})
    s.budget = solvers.Budget(seconds=0.5)
    with pytest.raises(TimeoutError, match="time limit"):
        s.run(FreeClock())


def test_seconds_budget_stops_training_gracefully():
    s, _ = _solver({"iterations": 10_000, "max_seconds": 0.5})
    s.run(FreeClock())
    assert 0 < s.iterations < 10_000


def test_invalid_combinations_are_rejected():
    with pytest.raises(ValueError, match="points"):
        solvers.get("dsm", steps=10, points=20)
    with pytest.raises(ValueError, match="hutchinson"):
        solvers.get("dsm", divergence="hutchinson", derivatives="loop")


@pytest.mark.parametrize("d, derivatives, expected", [
    (2, "func", "exact"), (4, "func", "hutchinson"), (4, "loop", "exact")])
def test_auto_divergence_switches_to_hutchinson_at_the_chosen_dimension(d, derivatives, expected):
    s, _ = _solver({"divergence": "auto", "hutchinson_from": 4, "derivatives": derivatives},
                   problem="harmonic_nd", d=d)
    assert s.divergence == expected
    s.run(FreeClock())
    assert s.evaluate().diagnostics["divergence"] == expected


def test_heun_evaluator_follows_an_exact_drift():
    """Stochastic Heun with the exact packet's drift v + u reproduces the exact moments (weak
    order 2: at 25 steps its bias is far below the statistical error of 20000 paths), and
    observes every grid point once."""
    from solvers.dsm.sampling import heun

    problem = problems.get("harmonic_1d_moving")
    ref = problem.reference()
    grid = torch.linspace(0.0, 1.0, 26, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)

    def drift(x, t):
        xn = x.numpy()
        return torch.as_tensor(ref.u(xn, t) + ref.v(xn, t))

    seen = {}

    def observe(i, x, t):
        seen[i] = (float(t), x.mean().item(), x.var().item())

    x0 = problem.sample_x0(20000, gen, dtype=torch.float64)
    heun(drift, x0, grid, math.sqrt(problem.hbar / problem.mass), gen, observe)
    assert sorted(seen) == list(range(26))
    times = np.array([seen[i][0] for i in range(26)])
    mean, var = ref.mean(times)[:, 0], ref.var(times)[:, 0]
    se_mean, se_var = np.sqrt(var / 20000), var * np.sqrt(2 / 20000)
    got_mean = np.array([seen[i][1] for i in range(26)])
    got_var = np.array([seen[i][2] for i in range(26)])
    assert np.all(np.abs(got_mean - mean) < 4.5 * se_mean)
    assert np.all(np.abs(got_var - var) < 4.5 * se_var)


def test_time_grid_resolves_the_problems_own_time_scale():
    """Uniform where the dynamics is slow (the paper's packet: the default 100 steps), fine at
    a narrow packet's fast start and growing with its spreading; evaluation at least twice as
    fine; the resolved grid is recorded."""
    from solvers.dsm.sampling import time_grid

    assert time_grid(1.0, 100, None, 30) == [k / 100 for k in range(101)]
    slow = DSM({"iterations": 1})
    slow.setup(problems.get("harmonic_1d"), times=np.linspace(0, 1, 11), seed=0)
    assert slow.resolved["steps"] == 100 and slow.resolved["time_feature"] == "linear"
    fast = DSM({"iterations": 1})
    singular = problems.get("singular_1d")
    fast.setup(singular, times=np.linspace(0, 1, 11), seed=0)
    grid = fast.train_times.numpy()
    steps = np.diff(grid)
    tau0 = singular.time_scale(np.array([0.0]))[0]
    assert steps[0] == pytest.approx(tau0 / 30, rel=0.05) and steps.max() <= 0.01 + 1e-9
    assert np.all(np.diff(steps[:40]) >= -1e-12)  # growing through the fast start
    assert fast.resolved["time_feature"] == "log" and fast.resolved["steps"] == len(grid) - 1
    grid_e, index = eval_grid(fast.times, grid, fast.params.eval_steps)
    eval_steps = np.diff(grid_e)
    assert eval_steps[0] <= steps[0] / 2 + 1e-12 and len(index) == 11
    capped = DSM({"iterations": 1, "max_steps": 120})
    capped.setup(singular, times=np.linspace(0, 1, 11), seed=0)
    assert capped.resolved["steps"] <= 120


def test_rate_time_feature_is_the_problems_own_clock():
    """time_feature=rate on a packet that squeezes mid-run (its time scale varies 5-fold): 0 at
    t = 0, 1 at T, with derivative 1/tau(t) normalised (autograd against the time scale itself
    and against a central difference), and training through torch.func runs with it; auto
    does not choose it."""
    squeeze = problems.get("harmonic_1d", omega=2.0, hbar=0.05, center=-0.2, sigma2=0.05,
                           phase=3.0)
    tau = squeeze.time_scale(np.linspace(0, 1, 4001))
    assert tau.max() / tau.min() > 4
    auto = DSM({"iterations": 1})
    auto.setup(squeeze, times=np.linspace(0, 1, 11), seed=0)
    assert auto.resolved["time_feature"] == "linear"
    dsm = DSM({"iterations": 2, "dtype": "float64", "batch": 8, "points": 4,
               "time_feature": "rate"})
    dsm.setup(squeeze, times=np.linspace(0, 1, 11), seed=0)
    assert dsm.resolved["time_feature"] == "rate"
    net = dsm.net
    t = torch.tensor([0.0, 0.137, 0.5, 0.731, 1.0], dtype=F64, requires_grad=True)
    s = net.time_feature(t)
    assert float(s[0]) == 0.0 and float(s[-1]) == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(s.detach().numpy()) > 0)
    (ds,) = torch.autograd.grad(s.sum(), t)
    z = np.trapezoid(1.0 / tau, dx=1.0 / 4000)
    rate = 1.0 / squeeze.time_scale(t.detach().numpy()) / z
    assert np.allclose(ds.numpy()[1:-1], rate[1:-1], rtol=1e-3)
    h = 1e-5
    inner = t.detach()[1:-1]
    central = (net.time_feature(inner + h) - net.time_feature(inner - h)) / (2 * h)
    assert np.allclose(central.numpy(), ds.numpy()[1:-1], rtol=1e-6)
    dsm.run(FreeClock())
    assert dsm.iterations == 2 and np.isfinite(dsm.history["loss"]).all()


# --- inputs normalised by the paths' own statistics -------------------------------------------
def _path_net(d, seed=0, degree=3, initial=None):
    torch.manual_seed(seed)
    net = TwinMLP(d, 16, 2, dtype=F64, path_norm=degree, initial=initial)
    with torch.no_grad():
        for w in net.weights:
            w.mul_(1.5)
        # mu and log s that move with t, so the derivatives see the normalisation's own t
        net.coef_mu.copy_(torch.randn(degree + 1, d, dtype=F64) * 0.3)
        net.coef_log_s.copy_(torch.randn(degree + 1, d, dtype=F64) * 0.3)
    return net


@pytest.mark.parametrize("initial", [None, "built_in"])
def test_path_normalised_derivatives_match_finite_differences(initial):
    d = 2
    init = (lambda xu, xv: (-3.0 * xu, 0.5 + 0.0 * xv)) if initial else None
    net = _path_net(d, initial=init)
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(5, d, generator=gen, dtype=F64)
    t = torch.rand(5, generator=gen, dtype=F64)
    from solvers.dsm.equations import _exact_func
    got = _exact_func(lambda a, b, s: net(a, b, s), x, t, nelson=False)
    h = 1e-5
    eye = torch.eye(d, dtype=F64)
    with torch.no_grad():
        u_of = lambda xx, tt: net(xx, xx, tt)[0]  # noqa: E731
        ju = torch.stack([(u_of(x + h * e, t) - u_of(x - h * e, t)) / (2 * h) for e in eye], -1)
        dtu = (u_of(x, t + h) - u_of(x, t - h)) / (2 * h)
    assert torch.allclose(got["ju"].detach(), ju, atol=1e-7)
    assert torch.allclose(got["dtu"].detach(), dtu, atol=1e-7)
    assert float(dtu.abs().max()) > 1e-2  # the time dependence is not trivial


def test_path_statistics_are_fitted_and_averaged():
    """Paths whose mean and log spread are polynomials of the time feature are fitted exactly;
    a second update moves the statistics by (1 - momentum) of the way."""
    net = TwinMLP(2, 8, 1, dtype=F64, path_norm=4)
    times = torch.linspace(0, 1, 41, dtype=F64)
    gen = torch.Generator().manual_seed(9)
    z = torch.randn(200000, 2, generator=gen, dtype=F64)
    z = (z - z.mean(0)) / z.std(0)  # exactly standardised, so the fit sees mu and s only
    mu = torch.stack([0.3 * times, -times**2], -1)
    s = torch.exp(torch.stack([times - 2.0, 0.5 * times**3], -1))
    xs = mu[:, None] + s[:, None] * z[None]
    net.update_norm(times, xs)
    basis = net._basis(times)
    assert torch.allclose(basis @ net.coef_mu, mu, atol=1e-10)
    assert torch.allclose(torch.exp(basis @ net.coef_log_s), s, rtol=1e-10)
    net.update_norm(times, xs + 1.0, momentum=0.75)
    assert torch.allclose(basis @ net.coef_mu, mu + 0.25, atol=1e-10)


def test_path_normalised_initial_condition_is_exact_for_a_spreading_packet():
    """With the exact mean and spread of a free packet, the built-in u0 carried along the
    paths' affine motion is the exact u at every t (the network's own part set to zero), and
    u0 itself at t = 0."""
    p = problems.get("singular_1d")
    net = TwinMLP(1, 8, 1, dtype=F64, path_norm=12, t_fast=float(p.time_scale(np.zeros(1))[0]),
                  t_scale=p.t_final, initial=lambda xu, xv: (p.u0(xu), p.v0(xv)))
    with torch.no_grad():
        net.weights[-1].zero_()
    times = torch.linspace(0, 1, 401, dtype=F64) ** 2
    mean, var, _, _ = p.moments(times)
    z = torch.randn(50000, 1, generator=torch.Generator().manual_seed(10), dtype=F64)
    z = (z - z.mean()) / z.std()
    net.update_norm(times, mean[:, None, None] + var.sqrt()[:, None, None] * z[None])
    t = torch.tensor([0.0, 0.01, 0.1, 0.5, 1.0], dtype=F64)
    x = torch.linspace(-1, 1, 5, dtype=F64)[:, None] * p.moments(t)[1].sqrt()[:, None]
    u, _ = net(x, x, t)
    exact = p.reference().u(x, t)
    assert torch.allclose(u, exact, rtol=2e-3, atol=1e-6)
    assert torch.allclose(u[0], p.u0(x[0]), rtol=1e-12)


def test_path_normalisation_needs_two_paths():
    with pytest.raises(ParameterError, match="batch >= 2"):
        _solver({"batch": 1}, problem="singular_1d")
    s, _ = _solver({"batch": 1}, problem="harmonic_1d")  # auto resolves to box there
    assert s.resolved["x_norm"] == "box"
