"""The layering as a test: the core imports nothing above it.

The core is the records, the lifecycle, ingest, checks, routing and the items
API. Adjudication, datasets and the sub-domain packages (workspace, judge,
monitoring, webhooks) read the core, never the reverse; and neither
adjudication nor datasets reach up into the workspace, which sits above them.
Imports are read with ``ast``, so an import inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = [
    "reviews/models",
    "reviews/services",
    "reviews/checks.py",
    "reviews/injection.py",
    "reviews/api",
    "reviews/otlp",
    "reviews/access",
    "reviews/selectors.py",
    "reviews/netpolicy.py",
    "reviews/jsontext.py",
    "reviews/errors.py",
    "reviews/principals.py",
    "reviews/stats.py",
]
ABOVE_CORE = (
    "adjudication",
    "datasets",
    "reviews.workspace",
    "reviews.judge",
    "reviews.monitoring",
    "reviews.quality",
    "reviews.webhooks",
    "reviews.imports",
    "reviews.bulk_actions",
    "reviews.admin",
)
ABOVE_APPS = ("reviews.workspace",)


def modules(path: str) -> list[Path]:
    target = ROOT / path
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    return [f for f in files if "migrations" not in f.parts]


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def breaches(paths: list[str], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in paths:
        for module in modules(path):
            for name in sorted(imported(module)):
                if any(name == f or name.startswith(f"{f}.") for f in forbidden):
                    found.append(f"{module.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("path", CORE)
def test_the_core_imports_nothing_above_it(path):
    assert modules(path), f"{path} has no modules: update the layering test"
    assert breaches([path], ABOVE_CORE) == []


def test_adjudication_and_datasets_do_not_reach_into_the_workspace():
    assert breaches(["adjudication", "datasets"], ABOVE_APPS) == []


def test_the_rule_sees_a_breach():
    """A rule that cannot fail is no rule: the reader finds a planted import."""
    assert "adjudication.services" in imported(ROOT / "reviews/workspace/services.py")


def test_queue_membership_is_set_by_the_lifecycle_alone():
    """``in_queue`` was once a second state machine set in six files."""
    setters = []
    for package in ("reviews", "adjudication", "datasets"):
        for module in modules(package):
            for node in ast.walk(ast.parse(module.read_text())):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if any(isinstance(t, ast.Attribute) and t.attr == "in_queue" for t in targets):
                    setters.append(str(module.relative_to(ROOT)))
    assert set(setters) == {"reviews/services/transitions.py"}
