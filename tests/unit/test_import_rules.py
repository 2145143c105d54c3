"""The dependency direction of DESIGN.md §2, checked on the source: every `import` (module level, inside
functions, under TYPE_CHECKING) is parsed with `ast`, relative imports resolved, and matched against the
rules below. A rule lists what a package may import of ours; anything of ours not listed fails.

    clients  → the wire protocol only (clients/protocol is pure pydantic); the CLI modules may import any
               part, but only lazily, inside functions
    server   → explain, the protocol, the bundle contract (training.contract, torch-free: bundle format,
               prompt encoder, base-model lookup, input pipeline) and the training modules in SERVER_TRAINING
               (none today)
    training → explain (and itself: the bundle contract lives in training/contract)
    explain  → nothing of ours

To tighten a rule, shorten its list; a module that is no longer imported anywhere is reported too, so the
list cannot go stale.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "server": "phishlens.server",
    "training": "phishlens.training",
    "explain": "phishlens.explain",
    "clients": "phishlens.clients",
}

# Training modules the server may import besides training.contract: none (the bundle format, prompt encoder
# and base-model lookup moved into the contract; layer naming is explain.hidden's).
SERVER_TRAINING: tuple[str, ...] = ()
CLI_MODULES = ("phishlens.clients.cli", "phishlens.clients.cli_classify")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name of the file
    target: str  # dotted name imported (a module, or module.attribute for `from m import a`)
    lazy: bool  # inside a function body
    line: int


def _module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [PACKAGES[folder], *rest]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend(Import(name, a.name, lazy, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                out.extend(Import(name, f"{module}.{a.name}", lazy, child.lineno) for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return [i for i in out if i.target == "phishlens" or i.target.startswith("phishlens.")]


def _files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _within(target: str, allowed: tuple[str, ...]) -> bool:
    return any(target == a or target.startswith(a + ".") for a in allowed)


def _violations(folder: str, allowed_for) -> list[str]:
    bad = []
    for path in _files(folder):
        for imp in _imports(path):
            allowed = allowed_for(imp)
            if not _within(imp.target, allowed):
                bad.append(f"{path.relative_to(ROOT)}:{imp.line} imports {imp.target}")
    return bad


def test_the_parser_sees_relative_lazy_and_type_checking_imports():
    imps = _imports(ROOT / "server" / "backends" / "hf_replica.py")
    targets = {i.target: i for i in imps}
    assert "phishlens.server.registry.AdapterEntry" in targets  # relative, under TYPE_CHECKING
    assert targets["phishlens.training.contract.base_models.resolve_base"].lazy  # inside a method
    assert not targets["phishlens.server.settings.Settings"].lazy


def test_explain_imports_nothing_of_ours():
    assert _violations("explain", lambda imp: ("phishlens.explain",)) == []


def test_training_imports_only_explain():
    assert _violations("training", lambda imp: ("phishlens.training", "phishlens.explain")) == []


def test_clients_import_only_the_protocol():
    def allowed(imp: Import) -> tuple[str, ...]:
        if imp.importer.startswith("phishlens.clients.protocol"):
            return ("phishlens.clients.protocol",)  # the protocol stands alone: the server imports it too
        if imp.importer in CLI_MODULES and imp.lazy:
            return ("phishlens",)  # the CLI may import every part, inside its commands
        # `phishlens.__version__` (the User-Agent) is the distribution's, not a package of ours
        return ("phishlens.clients", "phishlens.__version__")

    assert _violations("clients", allowed) == []


def test_server_imports_explain_the_protocol_and_the_bundle_contract():
    allowed = (
        "phishlens.server",
        "phishlens.explain",
        "phishlens.clients.protocol",
        "phishlens.training.contract",
        *SERVER_TRAINING,
        "phishlens.__version__",
    )
    assert _violations("server", lambda imp: allowed) == []


def test_server_training_list_is_not_stale():
    used = {
        t for p in _files("server") for i in _imports(p) for t in SERVER_TRAINING if _within(i.target, (t,))
    }
    assert used == set(SERVER_TRAINING), f"no longer imported by server/: {set(SERVER_TRAINING) - used}"


@pytest.mark.parametrize("folder", sorted(PACKAGES))
def test_every_source_file_parses(folder):
    assert _files(folder), folder
    for path in _files(folder):
        _imports(path)


def test_settings_are_read_as_attributes():
    """`getattr(settings, name, default)` hides undeclared settings (a typo reads the default forever)."""
    bad = []
    for folder in PACKAGES:
        for path in _files(folder):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr"
                ):
                    target = ast.unparse(node.args[0]) if node.args else ""
                    if target.split(".")[-1] == "settings" or (
                        path.name == "settings.py" and target == "self"
                    ):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} getattr({target}, ...)")
    assert bad == []
