"""The house rules of the layout (docs/architecture.md), read from the source: which package may import
which, and that no engine module grows past what one concern needs."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "content", "nurture", "support", "tests", "benchmarks", "scripts")
# package -> the project packages it must never import (at module level or inside a function)
FORBIDDEN = {
    "content": {"nurture", "config", "support", "tests"},  # the editorial side stands on its own
    "nurture": {"config", "support", "tests"},  # the engine does not reach up into the wiring
    "config": {"support", "tests"},
    "support": {"tests"},
    "benchmarks": {"tests"},
    "scripts": {"tests"},
}
MAX_ENGINE_LINES = 420  # "about 400": past this a module holds more than one concern


def _python_files(package: str):
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_follow_the_layout(package):
    assert len(_python_files(package)) >= 2  # the walk found the package's modules
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(_imported_packages(path) & FORBIDDEN[package])}"
        for path in _python_files(package)
        if _imported_packages(path) & FORBIDDEN[package]
    ]
    assert offenders == []


def test_no_engine_module_is_longer_than_one_concern_needs():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _python_files("nurture")
        if (n := len(path.read_text().splitlines())) > MAX_ENGINE_LINES
    }
    assert long == {}


def test_the_rule_reader_sees_a_forbidden_import(tmp_path):
    # The checks above are only as good as the reader: it must see imports inside functions too.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from nurture.models import Step\n    import tests.helpers\n")
    assert _imported_packages(sample) == {"nurture", "tests"}


def test_task_names_are_written_only_in_the_queues_module():
    from nurture.queues import TASK_QUEUES, TaskNames

    names = {value for key, value in vars(TaskNames).items() if key.isupper()}
    assert set(TASK_QUEUES) == names  # every task has its queue
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("nurture", "config", "content", "support")
        for path in _python_files(package)
        if path != ROOT / "nurture" / "queues.py" and any(f'"{name}"' in path.read_text() for name in names)
    ]
    assert offenders == []


def test_every_named_task_is_registered_under_its_name():
    from celery import current_app

    import nurture.tasks  # noqa: F401 - registers the tasks
    from nurture.queues import TaskNames

    names = {value for key, value in vars(TaskNames).items() if key.isupper()}
    assert names <= set(current_app.tasks)
