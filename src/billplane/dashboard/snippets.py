"""The API call builder: ready-to-paste client calls in curl, JavaScript `fetch` and Python:
check, usage, checkout and portal, and for credits the balances, a top-up and a reservation.

Every snippet reads the token from the `PROJECT_TOKEN` environment variable, so no real token is
ever printed in a page, and a pasted snippet keeps the secret out of the app's source. The usage
snippet builds its idempotency key from the action's id, fresh on every run until the app puts
its own id there: a fixed key would count the first paste only, and never reach a limit.
"""

import json
import shlex
from dataclasses import dataclass
from typing import Any

LANGUAGES = {"curl": "curl", "js": "JavaScript fetch", "python": "Python"}
PLACEHOLDER = "PROJECT_TOKEN"
WHY_ACTION_ID = "the same action sent twice counts once; a new action needs a new key."
# Stands for the action id inside a rendered body until each language puts its own expression.
_ACTION = "@@ACTION_ID@@"


@dataclass(frozen=True)
class FromAction:
    """A body value the app derives from its own id for the action: `prefix` + that id."""

    prefix: str


@dataclass(frozen=True)
class Call:
    key: str
    title: str
    method: str
    path: str
    body: dict[str, Any] | None  # None: a GET, sent without a body
    note: str


@dataclass(frozen=True)
class Choice:
    """What the operator picked; each may still be a placeholder."""

    tenant: str
    feature: str
    plan: str
    origin: str
    # For credits: a feature priced in a pool (for a reservation) and a price a pool sells.
    credit_feature: str = "FEATURE_KEY"
    pack: str = "PRICE_ID"


def calls(choice: Choice) -> list[Call]:
    return [
        Call(
            "check",
            "Check before a paid action",
            "POST",
            "/v1/check",
            {"tenant": choice.tenant, "feature": choice.feature},
            "Answers allowed (true/false), the reason, and the numbers for limited features.",
        ),
        Call(
            "usage",
            "Record usage after it happened",
            "POST",
            "/v1/usage",
            {
                "tenant": choice.tenant,
                "feature": choice.feature,
                "quantity": 1,
                "idempotency_key": FromAction(f"{choice.feature}-"),
                "enforce": True,
            },
            "The idempotency_key comes from the action's id (your app's own, e.g. the listing's; "
            "a fresh one on each run until then): a retry of the same action counts once, each "
            "new action counts. With enforce, an over-limit call answers 402 and counts nothing.",
        ),
        Call(
            "checkout",
            "Start a paid subscription (Stripe Checkout)",
            "POST",
            "/v1/checkout",
            {
                "tenant": choice.tenant,
                "plan": choice.plan,
                "success_url": f"{choice.origin}/billing/success",
                "cancel_url": f"{choice.origin}/billing",
            },
            "Send the tenant's browser to the answer's url; the URLs must lie under an origin "
            "of the project.",
        ),
        Call(
            "portal",
            "Let the tenant manage billing (Customer Portal)",
            "POST",
            "/v1/portal",
            {"tenant": choice.tenant, "return_url": f"{choice.origin}/billing"},
            "Send the tenant's browser to the answer's url (409 until it has paid once).",
        ),
        *credit_calls(choice),
    ]


def credit_calls(choice: Choice) -> list[Call]:
    return [
        Call(
            "balances",
            "Show the tenant's credits",
            "GET",
            f"/v1/tenants/{choice.tenant}/balances",
            None,
            "Each credit pool's usable balance, its buckets (soonest-expiring first) and the "
            "newest movements of its ledger.",
        ),
        Call(
            "topup",
            "Sell a pack of credits (Stripe Checkout)",
            "POST",
            "/v1/topups",
            {
                "tenant": choice.tenant,
                "price": choice.pack,
                "success_url": f"{choice.origin}/credits/thanks",
                "cancel_url": f"{choice.origin}/credits",
            },
            "The price is a one-time Stripe price a pool sells (its packs). Send the tenant's "
            "browser to the answer's url; the credits land once it is paid (the webhook, or "
            "POST /v1/checkout/{id}/confirm on return).",
        ),
        Call(
            "reservation",
            "Hold credits for a long action",
            "POST",
            "/v1/reservations",
            {
                "tenant": choice.tenant,
                "feature": choice.credit_feature,
                "quantity": 1,
                "idempotency_key": FromAction(f"{choice.credit_feature}-"),
                "expires_in": 900,
            },
            "Holds what the estimate costs (402 insufficient_credits if it does not fit). When "
            'the action ends, POST /v1/reservations/{id}/finalize with {"quantity": <used>}, or '
            "/release if it failed; a hold left alone releases itself after expires_in seconds.",
        ),
    ]


def snippet(language: str, base_url: str, call: Call) -> str:
    render = {"curl": curl, "js": javascript, "python": python}[language]
    return render(base_url, call)


def curl(base_url: str, call: Call) -> str:
    command = [
        f"curl -sS -X {call.method} {shlex.quote(base_url + call.path)} \\",
        f'  -H "Authorization: Bearer ${PLACEHOLDER}"',
    ]
    if call.body is not None:
        body = shlex.quote(json.dumps(_marked(call.body), indent=2))
        # Inside the single-quoted body, the id is spliced in double quotes: '…-'"$ACTION_ID"'…'.
        body = body.replace(_ACTION, "'\"$ACTION_ID\"'")
        command[-1] += " \\"
        command += ["  -H 'Content-Type: application/json' \\", f"  -d {body}"]
    if not _needs_action_id(call):
        return "\n".join(command)
    # `date` and `od` answer alike in bash, zsh and sh, on Linux and macOS (no %N, no $RANDOM).
    fresh = "$(date +%s)-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
    return "\n".join(
        [
            f"# Idempotency: {WHY_ACTION_ID}",
            f'ACTION_ID="{fresh}"  # or your app\'s own id for the action',
            *command,
        ]
    )


def javascript(base_url: str, call: Call) -> str:
    action = [
        f"// Idempotency: {WHY_ACTION_ID}",
        "const actionId = crypto.randomUUID(); // or your app's own id for the action",
    ]
    sent: list[str] = []
    if call.body is not None:
        body = json.dumps(_marked(call.body), indent=2).replace("\n", "\n  ")
        sent = [
            '    "Content-Type": "application/json",',
            "  },",
            f"  body: JSON.stringify({_spliced(body, call, 'actionId')}),",
        ]
    return "\n".join(
        [
            "// Server side only (a Base44/Deno function or Node): keep the token out of browsers.",
            f'const token = globalThis.Deno?.env.get("{PLACEHOLDER}")',
            f"  ?? process.env.{PLACEHOLDER};",
            *(action if _needs_action_id(call) else []),
            f"const response = await fetch({json.dumps(base_url + call.path)}, {{",
            f'  method: "{call.method}",',
            "  headers: {",
            '    "Authorization": `Bearer ${token}`,',
            *(sent or ["  },"]),
            "});",
            "const result = await response.json();",
            # Whole: console.log of an object cuts nesting (a balance's buckets) at depth 2.
            "console.log(response.status, JSON.stringify(result, null, 2));",
        ]
    )


def python(base_url: str, call: Call) -> str:
    needs_id = _needs_action_id(call)
    action = [
        f"# Idempotency: {WHY_ACTION_ID}",
        "action_id = str(uuid.uuid4())  # or your app's own id for the action",
    ]
    return "\n".join(
        [
            "import os",
            *(["import uuid"] if needs_id else []),
            "",
            "import httpx",
            "",
            *(action if needs_id else []),
            f"response = httpx.{call.method.lower()}(",
            f"    {json.dumps(base_url + call.path)},",
            f'    headers={{"Authorization": f"Bearer {{os.environ[\'{PLACEHOLDER}\']}}"}},',
            *(
                [f"    json={_spliced(_python_literal(_marked(call.body)), call, 'action_id')},"]
                if call.body is not None
                else []
            ),
            "    timeout=10,",
            ")",
            "result = response.json()",
            "print(response.status_code, result)",
        ]
    )


def _needs_action_id(call: Call) -> bool:
    return any(isinstance(value, FromAction) for value in (call.body or {}).values())


def _marked(body: dict[str, Any]) -> dict[str, Any]:
    """The body with each action-derived value as a string holding the `_ACTION` mark."""
    return {
        key: value.prefix + _ACTION if isinstance(value, FromAction) else value
        for key, value in body.items()
    }


def _spliced(rendered: str, call: Call, variable: str) -> str:
    """JS or Python source of a marked body, each marked string now `"prefix" + variable`."""
    for value in (call.body or {}).values():
        if isinstance(value, FromAction):
            marked = json.dumps(value.prefix + _ACTION)
            rendered = rendered.replace(marked, f"{json.dumps(value.prefix)} + {variable}")
    return rendered


def _python_literal(value: dict[str, Any]) -> str:
    # JSON strings and numbers are valid Python literals; only the booleans are spelled otherwise.
    items = [f"{json.dumps(k)}: {_py(v)}" for k, v in value.items()]
    return "{" + ", ".join(items) + "}"


def _py(value: Any) -> str:
    return repr(value) if isinstance(value, bool) else json.dumps(value)
