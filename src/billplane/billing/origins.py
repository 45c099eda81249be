"""Where Stripe may send a customer back to: only under one of the project's `origins`.

Checkout and portal redirect the customer's browser to URLs a client app names; anything outside
the app's own origins would make billplane an open redirect.
"""

from urllib.parse import SplitResult, urlsplit

from billplane.billing.errors import UrlNotAllowed

CHECKOUT_SESSION_ID = "{CHECKOUT_SESSION_ID}"
DEFAULT_PORTS = {"http": 80, "https": 443}


def allowed_url(url: str, origins: list[str], *, param: str) -> str:
    """`url` itself when it lies under one of `origins`; else UrlNotAllowed (400)."""
    parts = _parse(url)
    if parts is not None and any(_under(parts, base) for base in origins):
        return url
    shown = ", ".join(origins) or "none configured"
    raise UrlNotAllowed(
        f"{param} must be an http(s) URL under one of the project's origins ({shown}).",
        extra={"param": param},
    )


def with_session_id(success_url: str) -> str:
    """The URL Checkout returns to, carrying the session id for the app to confirm."""
    if CHECKOUT_SESSION_ID in success_url:
        return success_url
    base, hash_, fragment = success_url.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}session_id={CHECKOUT_SESSION_ID}{hash_}{fragment}"


def _parse(url: str) -> SplitResult | None:
    # Browsers read a backslash as a slash and drop tabs and newlines: such a URL could mean
    # another host to the browser than to the parser, so it is refused outright.
    if any(c in url for c in "\\\t\r\n ") or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a malformed port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return parts


def _under(url: SplitResult, origin: str) -> bool:
    base = _parse(origin)
    if base is None:
        return False
    same_origin = (
        url.scheme == base.scheme and url.hostname == base.hostname and _port(url) == _port(base)
    )
    prefix = base.path.rstrip("/")
    path = url.path or "/"
    return same_origin and (not prefix or path == prefix or path.startswith(prefix + "/"))


def _port(parts: SplitResult) -> int:
    return parts.port or DEFAULT_PORTS[parts.scheme]
