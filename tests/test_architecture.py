"""The house rules of the layout (docs/architecture.md), read from the source: which package may import
which, and that no engine module grows past what one concern needs."""
from __future__ import annotations

import ast
import re
import sys
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


# --- one writer of a delivery's state ---------------------------------------------------------------

LEDGER = ROOT / "nurture" / "sending" / "ledger.py"
STATE_FIELDS = {"status", "unanswered"}  # a delivery's state: where it is, and "failed for want of an answer"
RAW_STATE_WRITE = re.compile(r"\bSET\b[^;\n]*\b(status|unanswered)\s*=", re.IGNORECASE)


def _mentions_delivery(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id == "Delivery") or (isinstance(n, ast.alias) and n.name == "Delivery")
        or (isinstance(n, ast.Constant) and n.value == "nurture_delivery")
        for n in ast.walk(node)
    )


def _names_another_model(node: ast.AST) -> bool:
    """`Subscriber.objects...`, `CarerHandoff.Status...`: the write is about that model's rows."""
    return any(
        isinstance(n, ast.Attribute) and n.attr in ("objects", "Status") and isinstance(n.value, ast.Name)
        and n.value.id != "Delivery"
        for n in ast.walk(node)
    )


def _text_of(node: ast.AST) -> str:
    """A string literal, or an f-string's literal parts joined with {} where the values go."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text_of(v) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ""


def delivery_state_writes(source: str, filename: str = "<source>") -> list[str]:
    """Where `source` writes a delivery's status (or its `unanswered` flag): an ORM update or
    bulk_update of those fields (or of `**fields`) on Delivery rows, a `.status = ...` assignment
    to a delivery, or raw SQL that SETs the column, in a module that speaks of Delivery. Other
    models' statuses (a subscriber's, a hand-off's) are not a delivery's: an update that names
    another model (`Subscriber.objects`, `CarerHandoff.Status`) and not Delivery does not count.
    Creating a row (it starts queued, the model's default) is not a change of state."""
    tree = ast.parse(source, filename=filename)
    about_deliveries = _mentions_delivery(tree)
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
    }
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "bulk_update"):
            fields = {k.arg for k in node.keywords if k.arg} | {
                key.value for k in node.keywords if k.arg is None and isinstance(k.value, ast.Dict)
                for key in k.value.keys if isinstance(key, ast.Constant)
            }
            listed = {_text_of(e) for a in node.args[1:2] if isinstance(a, (ast.List, ast.Tuple)) for e in a.elts}
            writes_state = (fields | listed) & STATE_FIELDS or any(k.arg is None for k in node.keywords)
            if writes_state and (_mentions_delivery(node) or (about_deliveries and not _names_another_model(node))):
                found.append(f"{filename}:{line} {node.func.attr}")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in STATE_FIELDS and node.value is not None and (
                    _mentions_delivery(node.value) or "deliver" in ast.unparse(target.value).lower()
                ):
                    found.append(f"{filename}:{line} .{target.attr} =")
                if isinstance(target, ast.Subscript) and _text_of(target.slice) in STATE_FIELDS and _mentions_delivery(node.value):
                    found.append(f"{filename}:{line} [{_text_of(target.slice)!r}] =")
        elif about_deliveries and id(node) not in docstrings and RAW_STATE_WRITE.search(_text_of(node)):
            found.append(f"{filename}:{line} raw SQL")
    return sorted(set(found))


def test_only_the_ledger_writes_a_delivery_s_state():
    writes = {
        str(path.relative_to(ROOT)): found
        for path in _python_files("nurture")
        if path != LEDGER and (found := delivery_state_writes(path.read_text(), str(path.relative_to(ROOT))))
    }
    assert writes == {}
    assert delivery_state_writes(LEDGER.read_text())  # the reader sees the ledger's own writes


@pytest.mark.parametrize("source", [
    "Delivery.objects.filter(pk=1).update(status=Delivery.Status.SKIPPED)",
    "rows = Delivery.objects.all()\nrows.update(unanswered=True)",
    "Delivery.objects.filter(pk=1).update(**{'status': 'sent'})",
    "Delivery.objects.count()\nrows.update(**fields)",
    "def f(delivery):\n    delivery.status = 'failed'",
    "def f(row):\n    row.status = Delivery.Status.SENT",
    "fields = {}\nfields['status'] = Delivery.Status.QUEUED",
    "Delivery.objects.bulk_update(rows, ['status'])",
    "from nurture.models import Delivery\nsql = f'UPDATE {table} SET failed_at = NULL, status = %s'",
    "from nurture.models import Delivery\nSQL = 'update nurture_delivery set unanswered = true'",
])
def test_the_state_reader_sees_a_write(source):
    assert delivery_state_writes(source)


@pytest.mark.parametrize("source", [
    "Subscriber.objects.filter(pk=1).update(status=Subscriber.Status.PAUSED)",
    "def f(handoff):\n    handoff.status = CarerHandoff.Status.STOPPED",
    "Delivery.objects.filter(status=Delivery.Status.QUEUED).update(carer_handoff=None)",
    "Delivery.objects.filter(status=Delivery.Status.FAILED).count()",
    "Delivery.objects.count()\nSubscriber.objects.filter(pk=1).update(status='paused')",
    "Delivery.objects.count()\nrows = {'status': Subscriber.Status.PAUSED}",
])
def test_the_state_reader_passes_over_what_is_not_a_delivery_s_state(source):
    assert delivery_state_writes(source) == []


# --- the sending package's face; no circles ---------------------------------------------------------

SENDING = ROOT / "nurture" / "sending"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for each import in the file, at module level or inside a function:
    `import a.b` gives ("a.b", None), `from a import b` gives ("a", "b"); relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "" if not node.level else _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module if not node.level else ".".join(p for p in (base, node.module) if p)
            found += [(module, alias.name) for alias in node.names]
    return found


def reaches_behind_the_sending_face(path: Path) -> list[str]:
    """Imports of the sending package's private modules (anything but the package itself) or of a
    private (_-prefixed) name from it."""
    submodules = {p.stem for p in SENDING.glob("*.py")} - {"__init__"}
    bad = []
    for module, name in _imports(path):
        if module.startswith("nurture.sending."):
            bad.append(module if name is None else f"{module}.{name}")
        elif module == "nurture.sending" and name is not None and (name.startswith("_") or name in submodules):
            bad.append(f"{module}.{name}")
    return bad


def test_nothing_outside_the_sending_package_reaches_behind_its_face():
    # Product code only: tests may look behind the face at the parts they test.
    outside = [p for package in ("nurture", "config", "support", "scripts", "benchmarks") for p in _python_files(package)
               if SENDING not in p.parents]
    offenders = {str(p.relative_to(ROOT)): bad for p in outside if (bad := reaches_behind_the_sending_face(p))}
    assert offenders == {}


def test_the_face_reader_sees_a_private_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from nurture.sending import deliveries_send, ledger, _private\n"
        "def f():\n    from nurture.sending.ledger import deliveries_claim\n    import nurture.sending.journal\n"
    )
    assert reaches_behind_the_sending_face(sample) == [
        "nurture.sending.ledger", "nurture.sending._private", "nurture.sending.ledger.deliveries_claim", "nurture.sending.journal",
    ]


def import_graph(package: str) -> dict[str, set[str]]:
    """module -> the package's modules it imports (module level and inside functions alike):
    `from a import b` is an arrow to a.b when that is a module, else to a."""
    modules = {_module_name(p): p for p in _python_files(package)}
    graph = {}
    for name, path in modules.items():
        arrows = set()
        for module, imported in _imports(path):
            if imported is not None and f"{module}.{imported}" in modules:
                arrows.add(f"{module}.{imported}")
            elif module in modules:
                arrows.add(module)
        graph[name] = arrows - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circles_in_the_engine():
    assert circles(import_graph("nurture")) == []


def test_the_circle_finder_sees_a_circle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_follows_imports_inside_functions(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("from pkg import two\n")
    (package / "two.py").write_text("def f():\n    from pkg.one import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert circles(import_graph("pkg")) == [["pkg.one", "pkg.two"]]
def test_only_the_dialect_module_asks_which_database_it_is_or_names_a_table():
    """Vendor branches and hand-written table names live in nurture/dialect.py (migrations aside), so
    the SQLite demo's differences are in one place and a renamed table is a one-line change."""
    table_in_sql = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+(nurture|content)_[a-z_]+", re.IGNORECASE)
    offenders = []
    for package in ("nurture", "content"):
        for path in _python_files(package):
            if path.name == "dialect.py":
                continue
            text = path.read_text()
            if "connection.vendor" in text or "vendor ==" in text or table_in_sql.search(text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
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
