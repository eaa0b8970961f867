"""The one-way flow of the code: harness -> solvers -> problems, and all of them -> core.

Read from the sources (no import), so that a new module that reaches back up the chain fails
here whatever it imports at run time."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what each package may import of the project's own packages
ALLOWED = {"core": set(), "problems": {"core"}, "solvers": {"problems", "core"},
           "harness": {"solvers", "problems", "core"}}


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_down_the_chain(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = {str(p.relative_to(ROOT)): sorted(_project_imports(p) - ALLOWED[package] - {package})
             for p in files}
    assert {k: v for k, v in wrong.items() if v} == {}
