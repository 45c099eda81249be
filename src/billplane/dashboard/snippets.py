"""The API call builder: ready-to-paste client calls in curl, JavaScript `fetch` and Python.

Every snippet reads the token from the `PROJECT_TOKEN` environment variable, so no real token is
ever printed in a page, and a pasted snippet keeps the secret out of the app's source.
"""

import json
import shlex
from dataclasses import dataclass
from typing import Any

LANGUAGES = {"curl": "curl", "js": "JavaScript fetch", "python": "Python"}
PLACEHOLDER = "PROJECT_TOKEN"


@dataclass(frozen=True)
class Call:
    key: str
    title: str
    method: str
    path: str
    body: dict[str, Any]
    note: str


@dataclass(frozen=True)
class Choice:
    """What the operator picked; each may still be a placeholder."""

    tenant: str
    feature: str
    plan: str
    origin: str


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
                "idempotency_key": f"{choice.feature}-example-1",
                "enforce": True,
            },
            "Use your own id for the action as idempotency_key: a retry is then counted once. "
            "With enforce, an over-limit call answers 402 and counts nothing.",
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
    ]


def snippet(language: str, base_url: str, call: Call) -> str:
    render = {"curl": curl, "js": javascript, "python": python}[language]
    return render(base_url, call)


def curl(base_url: str, call: Call) -> str:
    return "\n".join(
        [
            f"curl -sS -X {call.method} {shlex.quote(base_url + call.path)} \\",
            f'  -H "Authorization: Bearer ${PLACEHOLDER}" \\',
            "  -H 'Content-Type: application/json' \\",
            f"  -d {shlex.quote(json.dumps(call.body, indent=2))}",
        ]
    )


def javascript(base_url: str, call: Call) -> str:
    body = json.dumps(call.body, indent=2).replace("\n", "\n  ")
    return "\n".join(
        [
            "// Server side only (a Base44/Deno function or Node): keep the token out of browsers.",
            f'const token = globalThis.Deno?.env.get("{PLACEHOLDER}")',
            f"  ?? process.env.{PLACEHOLDER};",
            f"const response = await fetch({json.dumps(base_url + call.path)}, {{",
            f'  method: "{call.method}",',
            "  headers: {",
            '    "Authorization": `Bearer ${token}`,',
            '    "Content-Type": "application/json",',
            "  },",
            f"  body: JSON.stringify({body}),",
            "});",
            "const result = await response.json();",
            "console.log(response.status, result);",
        ]
    )


def python(base_url: str, call: Call) -> str:
    return "\n".join(
        [
            "import os",
            "",
            "import httpx",
            "",
            f"response = httpx.{call.method.lower()}(",
            f"    {json.dumps(base_url + call.path)},",
            f'    headers={{"Authorization": f"Bearer {{os.environ[\'{PLACEHOLDER}\']}}"}},',
            f"    json={_python_literal(call.body)},",
            "    timeout=10,",
            ")",
            "result = response.json()",
            "print(response.status_code, result)",
        ]
    )


def _python_literal(value: dict[str, Any]) -> str:
    # JSON strings and numbers are valid Python literals; only the booleans are spelled otherwise.
    items = [f"{json.dumps(k)}: {_py(v)}" for k, v in value.items()]
    return "{" + ", ".join(items) + "}"


def _py(value: Any) -> str:
    return repr(value) if isinstance(value, bool) else json.dumps(value)
