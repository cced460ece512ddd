"""The layers of shared/DESIGN.md hold (import-linter's contracts in pyproject.toml), and an import inside a
function says why it is not at the top of its module."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ui", "app_pages")


def test_import_linter_contracts_hold():
    """pages -> ui -> core services -> train -> models -> data -> store/settings, core without streamlit, and
    no import cycles: `lint-imports` exits 0 only when every contract in pyproject.toml is kept."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "broken" not in proc.stdout.split("Contracts:")[-1].replace("0 broken", "")


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every import statement inside a function or class body (not `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    out.append((inner.lineno, ast.get_source_segment(path.read_text(), inner) or ""))
    return sorted(set(out))


def _has_reason(lines: list[str], lineno: int) -> bool:
    """A `# lazy: why` comment on the import's line, or above the block of imports it belongs to."""
    if "# lazy:" in lines[lineno - 1]:
        return True
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith(("from ", "import ")):
        i -= 1
    return i >= 0 and lines[i].lstrip().startswith("# lazy:")


def test_imports_inside_functions_state_their_reason():
    missing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for lineno, text in _function_imports(path):
                if not _has_reason(lines, lineno):
                    missing.append(f"{path.relative_to(ROOT)}:{lineno}: {text}")
    assert not missing, "imports inside functions without a '# lazy: reason' comment:\n" + "\n".join(missing)


def test_the_reason_check_sees_a_bare_import(tmp_path):
    """The check above can fail: a function-level import without a reason is found, one with a reason is not."""
    f = tmp_path / "m.py"
    f.write_text("def a():\n    import json\n\n\ndef b():\n    # lazy: json is slow here\n    import json\n"
                 "    from os import path\n")
    lines = f.read_text().splitlines()
    found = {lineno: _has_reason(lines, lineno) for lineno, _ in _function_imports(f)}
    assert found == {2: False, 7: True, 8: True}


def test_the_first_page_draws_before_torch_loads():
    """The Overview page (the default) and the sidebar import only modules that need no torch, so the title,
    the sidebar and the stored results draw at once; torch (~2 s) loads when a model is needed. This is what
    the `# lazy:` imports in core/jobs.py, core/results.py and ui/pickers.py are for."""
    code = ("import ast, sys; from pathlib import Path\n"
            "tree = ast.parse(Path('app_pages/overview.py').read_text())\n"
            "mods = [n.module for n in tree.body if isinstance(n, ast.ImportFrom)]\n"
            "assert 'core.jobs' in mods and 'core.results' in mods, mods\n"
            "import ui.sidebar\n"
            "for m in mods: __import__(m)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'transformers', 'timm', 'sklearn') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
