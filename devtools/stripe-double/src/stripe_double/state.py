"""The double's memory: every object by kind, ids, lookups, list pages, expansion and events.

One re-entrant lock guards all of it, because the HTTP server thread and the test's thread
(lifecycle controls) both change it.
"""

import contextvars
import copy
import secrets
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stripe_double import objects
from stripe_double.clock import Clock
from stripe_double.errors import parameter_invalid, resource_missing
from stripe_double.forms import Params, as_int, as_list
from stripe_double.objects import StripeObject

# The version today's SDK pins; events carry it as Stripe stamps the account's version.
DEFAULT_API_VERSION = "2026-10-28.endive"

_ALPHABET = string.ascii_letters + string.digits

# The id prefix of each kind of object the double stores or numbers.
PREFIXES = {
    "product": "prod_",
    "price": "price_",
    "customer": "cus_",
    "subscription": "sub_",
    "subscription_item": "si_",
    "checkout.session": "cs_test_",
    "billing_portal.session": "bps_",
    "invoice": "in_",
    "line_item": "il_",
    "item": "li_",
    "event": "evt_",
    "webhook_endpoint": "we_",
    "payment_intent": "pi_",
    "charge": "ch_",
    "refund": "re_",
}


@dataclass(frozen=True)
class RequestInfo:
    """The API request being served, which events it causes name (`event.request`)."""

    id: str
    idempotency_key: str | None


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "current_request", default=None
)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def kind_of(object_id: str) -> str | None:
    if object_id.startswith("cs_live_"):
        return "checkout.session"
    for kind, prefix in PREFIXES.items():
        if object_id.startswith(prefix):
            return kind
    return None


def changed_attributes(before: StripeObject, after: StripeObject) -> StripeObject:
    """Stripe's `previous_attributes`: the old value of each top-level key that changed."""
    return {key: value for key, value in before.items() if after.get(key) != value}


class DoubleState:
    """All objects of one double, plus the event stream they produce."""

    def __init__(self, *, clock: Clock, api_version: str = DEFAULT_API_VERSION) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.api_version = api_version
        self.base_url = ""
        self._objects: dict[str, dict[str, StripeObject]] = {kind: {} for kind in PREFIXES}
        self._deleted: set[str] = set()
        self.webhook_secrets: dict[str, str] = {}
        # Idempotency-Key → (request fingerprint, response body), as Stripe replays retries.
        self.idempotent: dict[str, tuple[str, bytes]] = {}
        # What a checkout session sells and sets up: not part of Stripe's session object.
        self.checkout_lines: dict[str, list[StripeObject]] = {}
        self.checkout_subscription_data: dict[str, Params] = {}
        # Set by the server: hands each new event to delivery.
        self.on_event: Callable[[StripeObject], None] = lambda event: None
        # Called with (method, path) as each API request arrives, before it is served: lets a
        # test see what its code under test was doing when it called Stripe.
        self.api_watchers: list[Callable[[str, str], None]] = []

    # --- storing and finding -------------------------------------------------------------

    def new_id(self, kind: str, *, livemode: bool = False) -> str:
        prefix = PREFIXES[kind]
        if kind == "checkout.session" and livemode:
            prefix = "cs_live_"
        return new_id(prefix)

    def add(self, kind: str, obj: StripeObject) -> StripeObject:
        self._objects[kind][obj["id"]] = obj
        return obj

    def get(self, kind: str, object_id: Any, *, param: str = "id") -> StripeObject:
        """The live object, or Stripe's 404 (also for a deleted one, which cannot be used)."""
        found = self._objects[kind].get(str(object_id))
        if found is None or found["id"] in self._deleted:
            raise resource_missing(kind.replace(".", " ").replace("_", " "), str(object_id), param)
        return found

    def view(self, kind: str, object_id: str) -> StripeObject:
        """What a retrieve answers: the object, or the `deleted: true` stub once deleted."""
        if object_id in self._deleted and object_id in self._objects[kind]:
            return objects.deleted(kind, object_id)
        return self.get(kind, object_id)

    def mark_deleted(self, object_id: str) -> None:
        self._deleted.add(object_id)

    def forget(self, object_id: str) -> None:
        """Drop the object entirely: from now on Stripe answers 404 for it."""
        for kind in _kinds_to_search(object_id):
            self._objects[kind].pop(object_id, None)

    def all(self, kind: str) -> list[StripeObject]:
        """Live objects of a kind, newest first, as Stripe lists them."""
        found = self._objects[kind].values()
        return [obj for obj in reversed(list(found)) if obj["id"] not in self._deleted]

    def find(self, object_id: str) -> StripeObject | None:
        """Any object by id alone, as expansion needs (a deleted one as its stub)."""
        for kind in _kinds_to_search(object_id):
            found = self._objects[kind].get(object_id)
            if found is not None:
                return objects.deleted(kind, object_id) if object_id in self._deleted else found
        return None

    def reset(self) -> None:
        for store in self._objects.values():
            store.clear()
        self._deleted.clear()
        self.webhook_secrets.clear()
        self.checkout_lines.clear()
        self.idempotent.clear()
        self.checkout_subscription_data.clear()

    # --- events --------------------------------------------------------------------------

    def emit(
        self, type: str, obj: StripeObject, previous: StripeObject | None = None
    ) -> StripeObject:
        """Record an event carrying a snapshot of `obj` as it is now, and hand it to delivery."""
        request = current_request.get()
        event = objects.event(
            id=self.new_id("event"),
            type=type,
            created=self.clock.now,
            livemode=bool(obj.get("livemode", False)),
            api_version=self.api_version,
            snapshot=copy.deepcopy(obj),
            previous_attributes=copy.deepcopy(previous),
            request_id=request.id if request else None,
            idempotency_key=request.idempotency_key if request else None,
        )
        self.add("event", event)
        self.on_event(event)
        return event

    # --- lists and expansion -------------------------------------------------------------

    def page(self, found: Iterable[StripeObject], params: Params, url: str) -> StripeObject:
        """One page of a list, with Stripe's `limit`, `starting_after` and `ending_before`."""
        rows = list(found)
        limit = as_int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise parameter_invalid("limit", "limit must be between 1 and 100")
        ids = [row["id"] for row in rows]
        if before := params.get("ending_before"):
            rows = rows[: self._cursor(ids, before, "ending_before")]
            window = rows[-limit:]
        else:
            if after := params.get("starting_after"):
                rows = rows[self._cursor(ids, after, "starting_after") + 1 :]
            window = rows[:limit]
        chunk = [self.expand(row, _list_expansions(params)) for row in window]
        return objects.list_object(chunk, url, has_more=len(rows) > limit)

    @staticmethod
    def _cursor(ids: list[str], cursor: str, param: str) -> int:
        if cursor not in ids:
            raise resource_missing("object", cursor, param)
        return ids.index(cursor)

    def render(self, obj: StripeObject, params: Params) -> StripeObject:
        """A copy of `obj` for a response, with the `expand[]` paths the caller asked for."""
        return self.expand(obj, [str(path) for path in as_list(params.get("expand"))])

    def expand(self, obj: StripeObject, paths: list[str]) -> StripeObject:
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand_path(result, path.split("."))
        return result

    def _expand_path(self, node: Any, parts: list[str]) -> None:
        if isinstance(node, list):
            for element in node:
                self._expand_path(element, parts)
            return
        if not parts or not isinstance(node, dict) or parts[0] not in node:
            return
        key, rest = parts[0], parts[1:]
        if isinstance(node[key], str) and (target := self.find(node[key])) is not None:
            node[key] = copy.deepcopy(target)
        self._expand_path(node[key], rest)


def _kinds_to_search(object_id: str) -> list[str]:
    # The prefix usually tells the kind; ids chosen by the caller (a product may have any id)
    # do not, so every kind is searched after it.
    kind = kind_of(object_id)
    return [kind, *PREFIXES] if kind else list(PREFIXES)


def _list_expansions(params: Params) -> list[str]:
    """List calls expand `data.customer`; each row is expanded with the part after `data.`."""
    paths = [str(path) for path in as_list(params.get("expand"))]
    return [path.removeprefix("data.") for path in paths if path.startswith("data.")]
