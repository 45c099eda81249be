"""How the administering commands print: a table for a list and a key/value view for one object,
or, with `--json`, exactly what the admin API answers for either (its own response models)."""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

from billplane.entitlements.schemas import PreviewOut
from billplane.plans.prices import PriceVerdict
from billplane.status.probes import money

AsJson = Annotated[
    bool, typer.Option("--json", help="Print what the admin API answers for it, as JSON.")
]

SHOWN_ONCE = "The token is shown only this once: store it now."

# One object as a person reads it: field name -> value (`cell` makes it text).
Fields = dict[str, object]
Out = TypeVar("Out", bound=BaseModel)


def show(out: Out, as_json: bool, view: Callable[[Out], Fields]) -> None:
    if as_json:
        typer.echo(out.model_dump_json(indent=2))
    else:
        record(view(out))


def show_list(
    outs: Sequence[Out],
    as_json: bool,
    view: Callable[[Out], Fields],
    columns: list[str],
    *,
    has_more: bool = False,
) -> None:
    """`{"data": [...], "has_more": ...}` like the admin API's lists, or a table."""
    if as_json:
        data = [out.model_dump(mode="json") for out in outs]
        typer.echo(json.dumps({"data": data, "has_more": has_more}, indent=2))
    else:
        table([view(out) for out in outs], columns)


def record(fields: Fields) -> None:
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        typer.echo(f"{name.ljust(width)}  {cell(value)}")


def table(rows: list[Fields], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def cell(value: object) -> str:
    """One value as text: `-` for none, `yes`/`no`, times to the second, lists comma-separated."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value)


def grants_text(grants: dict[str, Any]) -> str:
    """`exports, sso=off, listings.publish=100/month`: as `--feature` and `--override` take them."""
    return ", ".join(
        k if v is True else f"{k}=off" if v is False else f"{k}={v['limit']}/{v['reset']}"
        for k, v in grants.items()
    )


def price_text(verdict: PriceVerdict | dict[str, Any] | None) -> str | None:
    """Stripe's word on a plan's price, as stored with the plan."""
    if verdict is None:
        return None
    if not verdict.get("checked"):
        return f"not checked: {verdict.get('reason')}"
    if not verdict.get("usable"):
        return f"problem: {verdict.get('reason')}"
    amount = money(verdict.get("amount") or 0, verdict.get("currency") or "")
    return f"ok, {amount} per {verdict.get('interval')}"


DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Change nothing: show what the change would do to each tenant (as `?dry_run=true`).",
    ),
]


def show_preview(preview: PreviewOut, as_json: bool) -> None:
    """A catalogue change's preview: the admin API's JSON, or a line of totals and a table."""
    if as_json:
        typer.echo(json.dumps(preview.model_dump(mode="json"), indent=2))
        return
    s = preview.summary
    typer.echo(
        f"Dry run, nothing changed: {s.tenants_affected} of {s.tenants_checked} tenants affected "
        f"({s.gaining} gaining, {s.losing} losing, {s.limits_raised} with limits raised, "
        f"{s.limits_lowered} lowered, {s.over_limit} already over a new limit, "
        f"{s.falling_to_no_plan} left with no plan)."
    )
    rows: list[Fields] = [
        {
            "tenant": t.tenant,
            "plan": t.plan_before
            if t.plan_before == t.plan_after
            else f"{t.plan_before} -> {t.plan_after}",
            "gained": ", ".join(t.gained),
            "lost": ", ".join(t.lost),
            "limits": ", ".join(
                f"{c.feature} {_limit(c.before)} -> {_limit(c.after)}"
                for c in [*t.limits_raised, *t.limits_lowered]
            ),
            "over limit": ", ".join(f"{o.feature} {o.used}/{o.limit}" for o in t.over_limit),
        }
        for t in preview.tenants
    ]
    if rows:
        table(rows, ["tenant", "plan", "gained", "lost", "limits", "over limit"])


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)
