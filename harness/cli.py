"""Command line: ``python -m harness {list,run,scaling,report,compare,figures,readme}``.

Bad input (unknown names, wrong types, values out of range, malformed options, an unreachable
scheduler) prints one line to stderr and exits with status 2 before anything is run or written;
any other exception is a bug of the suite and shows its traceback.  Running a matrix is
:mod:`harness.matrix`'s work; this module only parses.
``run`` exits with 1 when a run failed, 130 (143 for SIGTERM) when interrupted, else 0;
``compare`` exits with 1 on a regression.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Sequence

from core import ParameterError

from . import commands
from . import options
from .options import Parser, UsageError

DEFAULT_OUT = Path("results") / "runs"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m harness", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    sub.add_parser("list", help="problems and solvers with their parameters")

    run = sub.add_parser("run", help="run one problem with one solver over seeds, or a profile")
    run.add_argument("--all", action="store_true",
                     help="run the whole matrix of a profile (see --profile)")
    run.add_argument("--profile", default="default",
                     help="profile name or TOML path for --all (default: default)")
    run.add_argument("--problem")
    run.add_argument("--solver")
    run.add_argument("--set", action="append", default=[], metavar="OWNER.KEY=VALUE",
                     help="override a parameter, e.g. problem.d=2 or solver.order=6")
    run.add_argument("--seeds", default=None,
                     help="comma-separated seeds or a range, e.g. 0,1,2 (default 0; with --all "
                          "the profile's)")
    run.add_argument("--out", type=Path, default=None,
                     help=f"record directory (default {DEFAULT_OUT}, or results/PROFILE with --all)")
    run.add_argument("--resume", action="store_true",
                     help="skip runs whose record already exists with status ok")
    run.add_argument("--times", type=int, default=None,
                     help="points of the record's time grid (default 101, or the profile's)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                     help="per-run limit on the solver's setup, run and evaluation; the run is "
                          "killed after this plus --kill-grace and recorded as failed "
                          "(default: the profile's)")
    run.add_argument("--kill-grace", type=float, default=None, metavar="SECONDS",
                     help="seconds a run may exceed its time limit before it is killed "
                          "(default: the profile's, else 60)")
    run.add_argument("--set-profile", action="append", default=[], metavar="KEY=VALUE",
                     help="with --all: override a profile value with a TOML value, e.g. "
                          "seeds=[0] or problems.harmonic_nd.dims=[2,3]")
    run.add_argument("--executor", default="local",
                     help="local (a pool of processes, default), dask, or inline (in this "
                          "process, for debugging)")
    run.add_argument("--workers", type=int, default=None,
                     help="concurrent runs of the local executor (default: the "
                          "profile's workers with --all, else 1)")
    run.add_argument("--threads", type=int, default=None,
                     help="threads per run (default: the machine's cores / concurrent runs)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="with --executor dask: the scheduler, e.g. tcp://10.0.0.5:8786, or "
                          "'local' / 'local:N' for an in-process LocalCluster of N workers")

    scale = sub.add_parser("scaling", help="seconds per iteration and peak memory against d")
    scale.add_argument("--problem", required=True)
    scale.add_argument("--solver", required=True)
    scale.add_argument("--dims", required=True, help="comma-separated dimensions, e.g. 1,2,4,8")
    scale.add_argument("--iterations", type=int, default=None,
                       help="training iterations per size (sets the solver's iteration budget)")
    scale.add_argument("--warmup", type=int, default=None,
                       help="iterations left out of the median (default: a fifth, at least 2)")
    scale.add_argument("--set", action="append", default=[], metavar="OWNER.KEY=VALUE")
    scale.add_argument("--device", default="auto", help="auto, cpu or cuda")
    scale.add_argument("--threads", type=int, default=None,
                       help="threads of each measurement's run process (default 1)")
    scale.add_argument("--out", type=Path, required=True, help="JSON file to write")

    report = sub.add_parser("report", help="tables from a directory of records")
    report.add_argument("directory", type=Path)
    report.add_argument("--out", type=Path, default=None,
                        help="CSV of the summary (default DIRECTORY/report.csv); the markdown "
                             "and parquet files go beside it")

    from .compare import DEFAULT_ATOL, DEFAULT_RTOL

    cmp = sub.add_parser("compare", help="regression report of NEW_DIR against BASELINE_DIR")
    cmp.add_argument("baseline", type=Path)
    cmp.add_argument("new", type=Path)
    cmp.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                     help=f"relative tolerance on errors (default {DEFAULT_RTOL:g})")
    cmp.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                     help=f"absolute tolerance on errors (default {DEFAULT_ATOL:g})")
    cmp.add_argument("--gate-timing", type=float, default=None, metavar="FACTOR",
                     help="also fail when s_per_iter or train_s grows by more than FACTOR")
    cmp.add_argument("--allow-missing", action="store_true",
                     help="runs of the baseline absent from NEW_DIR are listed, not failed")
    cmp.add_argument("--out", type=Path, default=None, help="also write the report to this file")

    rd = sub.add_parser("readme", help="rewrite the README's sections generated from records")
    rd.add_argument("--file", type=Path, default=None,
                    help="the markdown file (default: the project's README.md)")
    rd.add_argument("--check", action="store_true",
                    help="only report out-of-date sections (exit 1 when there are any)")

    fig = sub.add_parser("figures", help="PNG figures from a directory of records")
    fig.add_argument("directory", type=Path)
    fig.add_argument("--out", type=Path, default=None,
                     help="directory for the PNGs (default DIRECTORY/figures)")
    fig.add_argument("--scaling", type=Path, nargs="+", default=[], metavar="FILE",
                     help="scaling studies (python -m harness scaling) to add to cost_vs_d")
    return parser


def _writable_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} exists and is not a directory")
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--out {path} is not writable")
    return path


def _positive(value: float | None, option: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{option} must be a positive number, got {value}")


def _requests(args) -> tuple[list, Path, float | None]:
    """The validated run requests of a ``run`` command, the record directory and the
    profile's kill grace (if any)."""
    import problems
    import solvers

    from . import profiles
    from .runner import RunRequest

    if args.times is not None and args.times < 2:
        raise UsageError(f"--times needs at least 2 points, got {args.times}")
    _positive(args.time_limit, "--time-limit")
    seeds = options.seeds(args.seeds) if args.seeds is not None else None
    if args.all:
        if args.problem or args.solver or args.set:
            raise UsageError("--all runs a profile's matrix; --problem, --solver and --set do not "
                             "apply (use --set-profile, or write a profile file)")
        profile = profiles.load(args.profile, args.set_profile)
        reqs = profiles.requests(profile, device=args.device, time_limit_s=args.time_limit,
                                 seeds=seeds)
        if args.times is not None:
            reqs = [dataclasses.replace(r, n_times=args.times) for r in reqs]
        if args.executor == "local" and args.workers is None:
            args.workers = profile.workers  # the profile's pool size, unless --workers
        return reqs, args.out or Path("results") / profile.name, profile.kill_grace_s
    if args.set_profile:
        raise UsageError("--set-profile changes a profile; it needs --all")
    if not args.problem or not args.solver:
        raise UsageError("run needs --problem and --solver, or --all")
    p_raw, s_raw = options.split_sets(args.set)
    p_params = problems.problem_class(args.problem).parse_params(p_raw)
    s_params = solvers.solver_class(args.solver).Params.parse_params(s_raw)
    reqs = [RunRequest(problem=args.problem, solver=args.solver, problem_params=p_params,
                       solver_params=s_params, seed=seed, n_times=args.times or 101,
                       device=args.device, time_limit_s=args.time_limit)
            for seed in (seeds if seeds is not None else [0])]
    return reqs, args.out or DEFAULT_OUT, None


def _executor(args, profile_grace: float | None):
    """The executor the options ask for, validated (nothing is started yet)."""
    from . import executors

    if args.executor not in executors.EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(executors.EXECUTORS)}, "
                         f"got {args.executor!r}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be a positive integer, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    _positive(args.kill_grace, "--kill-grace")
    grace = args.kill_grace or profile_grace or executors.KILL_GRACE_S
    if args.executor != "dask" and args.scheduler is not None:
        raise UsageError("--scheduler needs --executor dask")
    if args.executor != "local" and args.workers is not None:
        raise UsageError(f"--workers sets the local pool; with --executor {args.executor} "
                         + ("the cluster's workers run the tasks" if args.executor == "dask"
                            else "runs go one at a time"))
    if args.executor == "dask":
        if not args.scheduler:
            raise UsageError("--executor dask needs --scheduler ADDRESS (or 'local' / 'local:N')")
        from .dask_cluster import parse_scheduler

        try:
            parse_scheduler(args.scheduler)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return executors.build(args.executor, workers=args.workers, threads=args.threads,
                           kill_grace_s=grace, scheduler=args.scheduler)


def _cmd_run(args) -> int:
    from . import matrix

    reqs, out, profile_grace = _requests(args)
    out = _writable_dir(out)
    executor = _executor(args, profile_grace)
    planned = matrix.plan_all(reqs)  # validate everything before running anything
    todo, done = matrix.pending(planned, out, args.resume)
    if not todo:
        print(f"nothing to run: all {len(planned)} runs have ok records in {out}")
        return 0
    try:
        if hasattr(executor, "connect"):
            executor.connect()
    except (ConnectionError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    return matrix.run_all(todo, out, executor, len(planned), done)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "list":
            return commands.cmd_list()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "report":
            return commands.cmd_report(args)
        if args.command == "scaling":
            return commands.cmd_scaling(args)
        if args.command == "compare":
            return commands.cmd_compare(args)
        if args.command == "figures":
            return commands.cmd_figures(args)
        if args.command == "readme":
            return commands.cmd_readme(args)
    except (UsageError, ParameterError) as exc:  # the user's input; anything else is a bug
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    return 2
