"""`billplane keys …`: the keys that sign snapshots, as the admin API lists and rotates them
(`SigningKeyOut`, `RotatedOut`; never a private key)."""

import typer

from billplane.cli.edge import ACTOR, settings, transaction
from billplane.cli.output import AsJson, Fields, show, show_list
from billplane.clock import utc_now
from billplane.signing import repository
from billplane.signing import service as signing
from billplane.signing.schemas import RotatedOut, SigningKeyOut

keys_app = typer.Typer(help="The keys that sign entitlement snapshots (published as a JWK Set).")


def key_fields(out: SigningKeyOut) -> Fields:
    return out.model_dump()


def _rotated_fields(out: RotatedOut) -> Fields:
    retired = out.retired
    return {
        "kid": out.key.kid,
        "created_at": out.key.created_at,
        "retired_kid": retired.kid if retired else None,
        "retired_published_until": retired.published_until if retired else None,
    }


@keys_app.command("list")
def keys_list(as_json: AsJson = False) -> None:
    """Every signing key, newest first, and until when the JWK Set lists it."""
    secret, now = settings().billplane_secret_key, utc_now()
    with transaction(write=False) as session:
        outs = [signing.describe(key, now, secret) for key in repository.all_keys(session)]
    columns = ["kid", "current", "created_at", "retired_at", "published_until", "readable"]
    show_list(outs, as_json, key_fields, columns)


@keys_app.command("rotate")
def keys_rotate(as_json: AsJson = False) -> None:
    """Make a new signing key; it signs every snapshot from now on. The old key stays in the
    JWK Set until every snapshot it signed has expired."""
    secret, now = settings().billplane_secret_key, utc_now()
    with transaction() as session:
        rotated = signing.rotate(session, secret, actor=ACTOR, now=now)
        out = signing.describe_rotation(rotated, now, secret)
    show(out, as_json, _rotated_fields)
