"""content/ stands on its own: no module in it imports nurture (the engine depends on content, never the reverse)."""
from __future__ import annotations

import ast
from pathlib import Path

CONTENT = Path(__file__).resolve().parent.parent / "content"


def engine_imports(path: Path) -> list[str]:
    """Every `import nurture...` / `from nurture... import` in the file, wherever it stands (also inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names if a.name.split(".")[0] == "nurture"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "nurture":
            found.append(f"{path.name}:{node.lineno} from {node.module} import ...")
    return found


def test_no_module_in_content_imports_nurture():
    files = sorted(CONTENT.rglob("*.py"))
    assert len(files) > 5  # the walk found the package (models, parsing, rendering, services, admin, migrations...)
    offenders = [hit for path in files for hit in engine_imports(path)]
    assert offenders == []


def test_the_check_sees_an_engine_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from nurture.models import Step\n    import nurture.emails as e\n")
    assert engine_imports(sample) == ["sample.py:2 from nurture.models import ...", "sample.py:3 import nurture.emails"]
