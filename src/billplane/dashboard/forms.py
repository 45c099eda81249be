"""From posted form fields to the admin API's own schemas, and from their errors to each field.

A form is checked by exactly the pydantic schema the admin API uses, then by the same service;
each problem is reported beside the field it concerns, in words a person reads.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from billplane.errors import BillplaneError
from billplane.models import Feature
from billplane.plans.schemas import GrantSpec

Schema = TypeVar("Schema", bound=BaseModel)

# Tags pydantic puts in an error's location for the branch of a union it tried.
_UNION_BRANCHES = {"bool", "LimitGrant"}
# The reset periods a limit can have, in the order a form offers them.
RESETS = ("month", "day", "billing_period", "never")
_KEY_HINT = "Use letters, digits and . _ : @ - only, starting with a letter or digit."


class Invalid(Exception):
    """The form's problems: per field (by input name), and any not tied to one field."""

    def __init__(self, fields: dict[str, str], general: str | None = None) -> None:
        super().__init__(general or "; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields
        self.general = general


def validated(schema: type[Schema], data: Mapping[str, Any]) -> Schema:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


def from_domain(exc: BillplaneError) -> Invalid:
    """A service's refusal, beside the field it names (`param`) when it names one."""
    param = exc.extra.get("param")
    if isinstance(param, str):
        return Invalid({param: exc.message})
    return Invalid({}, exc.message)


def as_invalid(exc: Invalid | BillplaneError) -> Invalid:
    """A form's problems, whether the form's validation or a service refused it."""
    if isinstance(exc, Invalid):
        return exc
    return from_domain(exc)


def field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[-1] == "bool":
            continue  # a limit was sent, so the union's boolean branch has nothing to say
        # Ints in a location are list indexes (an origin's line); strings are fields and keys.
        name = ".".join(p for p in loc if isinstance(p, str) and p not in _UNION_BRANCHES)
        message = _human(error, name)
        if loc and isinstance(loc[-1], int):
            message = f"Line {loc[-1] + 1}: {message}"
        fields.setdefault(name, message)
    return fields


def _human(error: Mapping[str, Any], name: str) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return "Required."
    if kind == "string_pattern_mismatch":
        if name == "stripe_price_id":
            return "A Stripe price id, like price_1PgafmB7WZ01zgkW."
        if name == "email":
            return "Not an email address."
        return _KEY_HINT
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "Enter a whole number."
    if kind == "greater_than_equal":
        return f"Must be {ctx['ge']} or more."
    if kind == "less_than_equal":
        return f"Must be {ctx['le']} or less."
    if kind == "string_too_long":
        return f"At most {ctx['max_length']} characters."
    if kind.startswith("url"):
        return f"Not an http(s) URL: {error.get('input')!s}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ").capitalize() + "."
    return str(error["msg"]).rstrip(".") + "."


# --- Reading fields -------------------------------------------------------------------------------


def text(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def lines(form: Mapping[str, str], name: str) -> list[str]:
    return [line.strip() for line in form.get(name, "").splitlines() if line.strip()]


def checked(form: Mapping[str, str], name: str) -> bool:
    return name in form


def number(form: Mapping[str, str], name: str) -> int | str | None:
    """An int when the field holds one; otherwise the text, for the schema to refuse by name."""
    value = form.get(name, "").strip()
    if not value:
        return None
    return int(value) if re.fullmatch(r"-?\d{1,12}", value) else value


def without_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def plan_grants(
    form: Mapping[str, str],
    features: Iterable[Feature],
    current: Mapping[str, GrantSpec] | None = None,
) -> dict[str, Any]:
    """A plan's `features` map: a ticked feature is granted; a limit feature may carry a limit.

    A limit typed for a feature whose box is not ticked is a field error, not silently dropped
    (the plan would grant less than the operator wrote). The limit the edit form shows for a
    granted feature is not "typed": unticking that feature removes it."""
    grants: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for feature in features:
        if not checked(form, f"grant.{feature.key}"):
            typed = form.get(f"limit.{feature.key}", "").strip() if feature.type == "limit" else ""
            shown = (current or {}).get(feature.key)
            if typed and not (isinstance(shown, dict) and str(shown["limit"]) == typed):
                problems[f"features.{feature.key}"] = (
                    f"A limit is typed for {feature.key}, but it is not ticked: tick it to "
                    "grant it, or clear the limit."
                )
            continue
        limit = number(form, f"limit.{feature.key}") if feature.type == "limit" else None
        if limit is None:
            grants[feature.key] = True
        else:
            reset = form.get(f"reset.{feature.key}", "month")
            grants[feature.key] = {"limit": limit, "reset": reset}
    if problems:
        raise Invalid(problems)
    return grants


def override_grants(form: Mapping[str, str], features: Iterable[Feature]) -> dict[str, Any]:
    """A tenant's `overrides` map: each feature follows the plan, or is on, off, or limited."""
    overrides: dict[str, Any] = {}
    for feature in features:
        choice = form.get(f"override.{feature.key}", "plan")
        if choice == "on":
            overrides[feature.key] = True
        elif choice == "off":
            overrides[feature.key] = False
        elif choice == "limit":
            overrides[feature.key] = {
                "limit": number(form, f"limit.{feature.key}"),
                "reset": form.get(f"reset.{feature.key}", "month"),
            }
    return overrides
