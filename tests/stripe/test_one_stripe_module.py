"""Only the Stripe gateway speaks to the SDK; the rest of billplane speaks in its own terms."""

import ast
from pathlib import Path

import billplane

SOURCE = Path(billplane.__file__).parent


def _imports_the_sdk(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "stripe" for alias in node.names
        ):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "stripe"
        ):
            return True
    return False


def test_only_the_gateway_imports_the_stripe_sdk() -> None:
    importers = sorted(
        str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py") if _imports_the_sdk(path)
    )
    assert importers == ["stripe/gateway.py"]
