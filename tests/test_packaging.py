"""The wheel holds billplane and nothing else, and asks for exactly what billplane imports.

The wheel is built from a copy of the files it is made of, so the build writes nothing into the
checkout; `--no-build-isolation` builds it with the setuptools of `.venv` (no network).
"""

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "billplane"

# Runtime dependencies billplane uses through a library rather than by importing them itself.
USED_THROUGH = {
    "jinja2": "fastapi.templating.Jinja2Templates renders the dashboard's pages",
    "python-multipart": "FastAPI reads the dashboard's forms with it",
    "itsdangerous": "Starlette's SessionMiddleware signs the dashboard's session cookie",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--wheel-dir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("billplane-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_only_billplane(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert tops == {"billplane", next(t for t in tops if t.endswith(".dist-info"))}
    names = set(wheel.namelist())
    # What the server needs at run time is in it: migrations, templates, the dashboard's assets.
    assert "billplane/migrations/env.py" in names
    assert any(n.startswith("billplane/dashboard/templates/") for n in names)
    assert any(n.startswith("billplane/dashboard/static/") for n in names)
    assert not any("stripe_double" in n or n.startswith("tests/") for n in names)


def _requires(wheel: zipfile.ZipFile) -> set[str]:
    [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(wheel.read(metadata).decode())
    runtime = [r for r in message.get_all("Requires-Dist") or [] if "extra ==" not in r]
    return {_normal(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in runtime}


def _imported_distributions() -> set[str]:
    modules: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    owners = packages_distributions()
    third_party = modules - set(sys.stdlib_module_names) - {"billplane"}
    return {_normal(dist) for module in third_party for dist in owners[module]}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_runtime_dependencies_are_what_billplane_imports(wheel: zipfile.ZipFile) -> None:
    requires = _requires(wheel)
    imported = _imported_distributions()
    assert imported <= requires, f"imported but not declared: {sorted(imported - requires)}"
    assert requires - imported == set(USED_THROUGH), (
        f"declared but never imported: {sorted(requires - imported - set(USED_THROUGH))}"
    )
    assert "httpx" in requires  # app webhooks are sent with it (the Stripe double is not shipped)
