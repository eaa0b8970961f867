"""The commands that read records or study cost: ``list``, ``scaling``, ``report``, ``compare``,
``figures``, ``readme`` (``run`` is :mod:`harness.cli`'s own, through :mod:`harness.matrix`)."""

from __future__ import annotations

from pathlib import Path

from core.io import atomic_write_text

from . import options
from .options import UsageError

__all__ = ["cmd_list", "cmd_scaling", "cmd_report", "cmd_compare", "cmd_figures", "cmd_readme"]


def cmd_list() -> int:
    import problems
    import solvers

    def show(kind, names, cls_of):
        print(f"## {kind}")
        for name in names:
            cls = cls_of(name)
            params_cls = cls.Params if hasattr(cls, "Params") else cls
            print(f"\n{name}: {cls.description}")
            for spec in params_cls.param_specs().values():
                print(f"  {spec.name:<24} default {spec.default!r:<10} {spec.describe_range():<22} {spec.doc}")
        print()

    show("problems", problems.names(), problems.problem_class)
    show("solvers", solvers.names(), solvers.solver_class)
    return 0


def cmd_scaling(args) -> int:
    import problems
    import solvers

    from . import records
    from .scaling import scaling

    dims = options.dims(args.dims)
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be positive, got {args.iterations}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    if args.warmup is not None and args.warmup < 0:
        raise UsageError(f"--warmup must be non-negative, got {args.warmup}")
    p_raw, s_raw = options.split_sets(args.set)
    if "d" in p_raw:
        raise UsageError("the dimension comes from --dims, not --set problem.d")
    p_params = problems.problem_class(args.problem).parse_params(p_raw)
    s_params = solvers.solver_class(args.solver).Params.parse_params(s_raw)
    if args.out.exists() and args.out.is_dir():
        raise UsageError(f"--out {args.out} is a directory; give a file name")
    study = scaling(args.problem, args.solver, dims, problem_params=p_params,
                    solver_params=s_params, iterations=args.iterations, device=args.device,
                    warmup=args.warmup, threads=args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, records.dumps(records.jsonable(study)) + "\n")
    print(f"wrote {args.out}")
    return 0


def _records_dir(path: Path, command: str) -> None:
    from . import records

    if not path.is_dir():
        raise UsageError(f"{command}: {path} is not a directory")
    if next(records.iter_records(path), None) is None:
        raise UsageError(f"{command}: no run records in {path}")


def cmd_report(args) -> int:
    from .report import (accuracy_for_cost, accuracy_markdown, runs_table, summary_markdown,
                         summary_table, write_report)

    _records_dir(args.directory, "report")
    runs = runs_table(args.directory)
    out = args.out or args.directory / "report.csv"
    if out.exists() and out.is_dir():
        raise UsageError(f"report: --out {out} is a directory; give a .csv file name")
    accuracy = accuracy_for_cost(args.directory)
    written = write_report(runs, out, title=f"Results in {args.directory}", accuracy=accuracy)
    print(summary_markdown(summary_table(runs)))
    if not accuracy.empty:
        print("\naccuracy for cost:\n" + accuracy_markdown(accuracy))
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_compare(args) -> int:
    from .compare import compare

    for path in (args.baseline, args.new):
        _records_dir(path, "compare")
    try:
        result = compare(args.baseline, args.new, rtol=args.rtol, atol=args.atol,
                         gate_timing=args.gate_timing, allow_missing=args.allow_missing)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    text = result.markdown()
    print(text, end="")
    if args.out is not None:
        atomic_write_text(args.out, text)
    return result.exit_code


def cmd_figures(args) -> int:
    from .figures import Skip, load_scaling, make_figures

    if not args.directory.is_dir():
        raise UsageError(f"figures: {args.directory} is not a directory")
    out = args.out or args.directory / "figures"
    if out.exists() and not out.is_dir():
        raise UsageError(f"figures: --out {out} exists and is not a directory")
    try:
        scaling = load_scaling(args.scaling)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        written = make_figures(args.directory, out, scaling)
    except Skip as exc:
        raise UsageError(f"figures: {exc}") from None
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_readme(args) -> int:
    from .env import PROJECT_ROOT
    from .readme import update

    path = args.file or PROJECT_ROOT / "README.md"
    if not path.is_file():
        raise UsageError(f"readme: {path} is not a file")
    try:
        stale = update(path, check=args.check)
    except (ValueError, OSError) as exc:
        raise UsageError(f"readme: {exc}") from None
    verb = "out of date" if args.check else "rewritten"
    for spec in stale:
        print(f"{verb}: {spec}")
    if not stale:
        print(f"{path}: every generated section is up to date")
    return 1 if stale and args.check else 0
