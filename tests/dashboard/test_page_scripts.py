"""The dashboard's Content-Security-Policy allows only its own files: every page runs script from
`/static` alone — no inline `<script>`, no `on…=` handler, no `javascript:` link — so the
policy never has to allow 'unsafe-inline' (which would let an injected script run)."""

from html.parser import HTMLParser

from fastapi.testclient import TestClient

from dashboard.conftest import Operator
from dashboard.test_tokens_pages import EVERY_PAGE, seeded, token_id


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline: list[str] = []  # what would need 'unsafe-inline'

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        self.inline += [f"<{tag} {name}=…>" for name in attr if name.startswith("on")]
        for name in ("href", "action", "src"):
            if (attr.get(name) or "").strip().lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}=javascript:…>")
        if tag == "script":
            if attr.get("src"):
                self.sources.append(str(attr["src"]))
            else:
                self.inline.append("<script> without src")


def scripts_of(page: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(page)
    return parser


def test_every_page_runs_only_the_dashboards_own_script_files(
    operator: Operator, client: TestClient
) -> None:
    seeded(operator)
    tok = token_id(operator.page("/projects/realtyos"), "default")
    pages = {path: operator.page(path) for path in EVERY_PAGE}
    for what in ("rotate", "revoke"):  # the confirmation pages, as a browser without script sees
        asked = operator.post(f"/projects/realtyos/tokens/{tok}/{what}", {}, expect=200)
        pages[f"{what} confirmation"] = asked.text
    sources: set[str] = set()
    for name, page in pages.items():
        found = scripts_of(page)
        assert found.inline == [], name
        assert found.sources, name
        sources.update(found.sources)
    assert {src.split("?")[0] for src in sources} == {"/static/copy.js", "/static/confirm.js"}
    for src in sources:
        served = client.get(src)
        assert served.status_code == 200, src
        assert "javascript" in served.headers["content-type"], src


def test_the_policy_allows_no_inline_script(operator: Operator) -> None:
    policy = operator.client.get("/projects").headers["content-security-policy"]
    directives = {}
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, _, value = part.partition(" ")
        directives[name] = value
    assert directives["default-src"] == "'self'"
    assert "script-src" not in directives  # so default-src, 'self' only, governs scripts
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
