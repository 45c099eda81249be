"""The API call builder: snippets for check, usage, checkout and portal in curl, JavaScript and
Python, for the chosen project, tenant, feature and plan, with the public base URL and the
`PROJECT_TOKEN` placeholder (never a real token); each one well-formed in its language."""

import ast
import subprocess
from pathlib import Path

from billplane.dashboard import snippets
from conftest import Setup
from dashboard.conftest import Operator, one_time_secret, snippet_of

CALLS = ["check", "usage", "checkout", "portal"]


def builder(operator: Operator, lang: str, **choice: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {**choice, "lang": lang}.items())
    return operator.page(f"/builder?{query}")


def test_snippets_use_the_choices_the_public_url_and_the_placeholder(
    stripe_operator: Operator,
) -> None:
    created = stripe_operator.post(
        "/projects", {"key": "realtyos", "name": "R", "origins": "https://app.realtyos.test"}
    )
    secret = one_time_secret(stripe_operator.follow(created))
    stripe_operator.post(
        "/projects/realtyos/features", {"key": "exports", "name": "E", "type": "boolean"}
    )
    stripe_operator.post(
        "/projects/realtyos/features", {"key": "seats", "name": "S", "type": "limit"}
    )
    stripe_operator.post(
        "/projects/realtyos/plans", {"key": "pro", "name": "Pro", "stripe_price_id": "price_pro"}
    )
    stripe_operator.post("/projects/realtyos/tenants", {"key": "acme"})
    stripe_operator.post("/projects/realtyos/tenants", {"key": "globex"})
    for lang in snippets.LANGUAGES:
        page = builder(
            stripe_operator, lang, project="realtyos", tenant="globex", feature="seats", plan="pro"
        )
        assert secret not in page
        assert secret[12:] not in page
        for call in CALLS:
            code = snippet_of(page, call)
            assert "PROJECT_TOKEN" in code, (lang, call)
            assert "bp_" not in code, (lang, call)
            assert f"https://billing.example.com/v1/{call}" in code, (lang, call)
            assert '"globex"' in code, (lang, call)
        assert '"seats"' in snippet_of(page, "check")
        assert '"pro"' in snippet_of(page, "checkout")
        assert "https://app.realtyos.test/billing/success" in snippet_of(page, "checkout")


def test_the_builder_picks_sensible_defaults(operator: Operator, realtyos: Setup) -> None:
    page = operator.page("/builder")
    # The first tenant and feature; for checkout a plan with a price before the free one.
    assert '"acme"' in snippet_of(page, "check")
    assert '"ai.tokens"' in snippet_of(page, "check")
    assert '"pro"' in snippet_of(page, "checkout")


def test_an_unknown_choice_falls_back_instead_of_failing(
    operator: Operator, realtyos: Setup
) -> None:
    page = builder(operator, "nope", project="nobody", tenant="ghost")
    assert '"acme"' in snippet_of(page, "check")
    assert "curl" in snippet_of(page, "check")


def test_without_a_project_the_builder_says_what_to_do_first(operator: Operator) -> None:
    page = operator.page("/builder")
    assert "Create a project first" in page
    assert '"TENANT_KEY"' in snippet_of(page, "check")


# --- Each snippet is valid in its language ------------------------------------------------------


def all_snippets(operator: Operator, lang: str) -> dict[str, str]:
    page = builder(operator, lang)
    return {call: snippet_of(page, call) for call in CALLS}


def test_curl_snippets_are_valid_shell(operator: Operator, realtyos: Setup) -> None:
    for call, code in all_snippets(operator, "curl").items():
        checked = subprocess.run(["bash", "-n"], input=code, text=True, capture_output=True)
        assert checked.returncode == 0, (call, checked.stderr)
        assert code.startswith("curl -sS -X POST ")


def test_python_snippets_are_valid_python(operator: Operator, realtyos: Setup) -> None:
    for call, code in all_snippets(operator, "python").items():
        tree = ast.parse(code)
        called = [
            n.func.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        ]
        assert "post" in called, call


def test_javascript_snippets_are_valid_modules(
    operator: Operator, realtyos: Setup, tmp_path: Path
) -> None:
    for call, code in all_snippets(operator, "js").items():
        module = tmp_path / f"{call}.mjs"
        module.write_text(code)
        checked = subprocess.run(["node", "--check", str(module)], capture_output=True, text=True)
        assert checked.returncode == 0, (call, checked.stderr)
        assert "await fetch(" in code
