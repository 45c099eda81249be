"""The API call builder: snippets for check, usage, checkout and portal, and for credits the
balances, a top-up and a reservation, in curl, JavaScript and Python, for the chosen project,
tenant, feature and plan, with the public base URL and the `PROJECT_TOKEN` placeholder (never a
real token); each one well-formed in its language."""

import ast
import re
import subprocess
from pathlib import Path

from billplane.dashboard import snippets
from conftest import Setup
from dashboard.conftest import Operator, one_time_secret, snippet_of

CALLS = ["check", "usage", "checkout", "portal"]
CREDIT_CALLS = ["balances", "topup", "reservation"]
KEYED = ("usage", "reservation")  # the calls whose idempotency key comes from the action


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
    return {call: snippet_of(page, call) for call in CALLS + CREDIT_CALLS}


def test_curl_snippets_are_valid_shell(operator: Operator, realtyos: Setup) -> None:
    for call, code in all_snippets(operator, "curl").items():
        for shell in ("bash", "sh"):
            checked = subprocess.run([shell, "-n"], input=code, text=True, capture_output=True)
            assert checked.returncode == 0, (call, shell, checked.stderr)
        # One command; the keyed calls first set the id of the action they record.
        before, command = code.split("curl -sS -X ", 1)
        assert "\ncurl " not in command
        assert ("-d '" in command) is (call != "balances"), call
        if call in KEYED:
            comment, assignment = before.splitlines()
            assert comment.startswith("# Idempotency: ")
            assert assignment.startswith('ACTION_ID="$(date +%s)-')
        else:
            assert before == ""


# --- The usage snippet's idempotency key: one per action -----------------------------------------

FIXED_KEY = re.compile(r"idempotency_key\W+[\w.-]+-example")


def test_the_usage_snippet_keys_each_action_by_its_id_and_says_why(
    operator: Operator, realtyos: Setup
) -> None:
    expressions = {
        "curl": '"idempotency_key": "ai.tokens-\'"$ACTION_ID"\'"',
        "js": '"idempotency_key": "ai.tokens-" + actionId',
        "python": '"idempotency_key": "ai.tokens-" + action_id',
    }
    for lang, expression in expressions.items():
        code = all_snippets(operator, lang)["usage"]
        assert expression in code, (lang, code)
        assert "the same action sent twice counts once; a new action needs a new key." in code
        assert "your app's own id for the action" in code
        assert not FIXED_KEY.search(code), lang
    page = builder(operator, "curl")
    assert "a retry of the same action counts once, each new action counts" in page


def action_ids(code: str, shell: str) -> list[str]:
    """What the curl snippet's ACTION_ID line gives in `shell`, run twice as two pastes."""
    line = next(row for row in code.splitlines() if row.startswith("ACTION_ID="))
    ids = []
    for _ in range(2):
        done = subprocess.run(
            [shell, "-c", f'{line}\nprintf %s "$ACTION_ID"'],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout)
    return ids


def test_each_paste_of_the_curl_usage_snippet_is_a_new_action(
    operator: Operator, realtyos: Setup
) -> None:
    code = all_snippets(operator, "curl")["usage"]
    for shell in ("bash", "sh"):  # sh: Debian's dash, with no $RANDOM
        first, second = action_ids(code, shell)
        assert re.fullmatch(r"[0-9]{10}-[0-9]+", first), (shell, first)
        assert first != second, shell


def test_the_usage_snippet_sets_the_key_only_where_it_is_sent(
    operator: Operator, realtyos: Setup
) -> None:
    for lang in snippets.LANGUAGES:
        for call, code in all_snippets(operator, lang).items():
            names = ("ACTION_ID", "actionId", "action_id")
            assert any(name in code for name in names) is (call in KEYED), (lang, call)


def test_python_snippets_are_valid_python(operator: Operator, realtyos: Setup) -> None:
    for call, code in all_snippets(operator, "python").items():
        tree = ast.parse(code)
        called = [
            n.func.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        ]
        assert ("get" if call == "balances" else "post") in called, call


def test_javascript_snippets_are_valid_modules(
    operator: Operator, realtyos: Setup, tmp_path: Path
) -> None:
    for call, code in all_snippets(operator, "js").items():
        module = tmp_path / f"{call}.mjs"
        module.write_text(code)
        checked = subprocess.run(["node", "--check", str(module)], capture_output=True, text=True)
        assert checked.returncode == 0, (call, checked.stderr)
        assert "await fetch(" in code


# --- Credits ------------------------------------------------------------------------------------


def test_credit_snippets_use_a_priced_feature_and_a_pack_the_project_sells(
    operator: Operator, realtyos: Setup
) -> None:
    pool = {
        "key": "credits",
        "name": "Credits",
        "costs": {"ai.tokens": 2},
        "packs": {"price_p500": 500},
    }
    realtyos.admin.call("POST", "/admin/api/projects/realtyos/credit-pools", 201, json=pool)
    for lang in snippets.LANGUAGES:
        # The chosen feature costs nothing: the reservation names the one a pool prices.
        page = builder(operator, lang, project="realtyos", feature="exports")
        assert "/v1/tenants/acme/balances" in snippet_of(page, "balances")
        topup = snippet_of(page, "topup")
        assert "/v1/topups" in topup
        assert '"price_p500"' in topup
        reservation = snippet_of(page, "reservation")
        assert "/v1/reservations" in reservation
        assert '"feature": "ai.tokens"' in reservation
        assert '"exports"' not in reservation
    assert "/finalize" in builder(operator, "curl")


def test_without_a_pool_the_credit_snippets_show_placeholders(
    operator: Operator, realtyos: Setup
) -> None:
    page = builder(operator, "python", project="realtyos")
    assert '"price": "PRICE_ID"' in snippet_of(page, "topup")
    assert '"feature": "FEATURE_KEY"' in snippet_of(page, "reservation")
