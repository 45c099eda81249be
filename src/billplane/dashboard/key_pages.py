"""Dashboard HTTP for the keys that sign entitlement snapshots: the list, and Rotate."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from billplane.dashboard.auth import OperatorForm
from billplane.dashboard.view import FormView, PageView, flash, redirect
from billplane.errors import BillplaneError
from billplane.signing import repository
from billplane.signing import service as signing

router = APIRouter(include_in_schema=False)

ACTOR = "dashboard"


@router.get("/signing-keys", response_class=HTMLResponse)
def signing_keys_page(view: PageView) -> Response:
    settings = view.settings
    secret = settings.billplane_secret_key
    with view.tx.read() as session:
        keys = [signing.describe(key, view.now, secret) for key in repository.all_keys(session)]
    return view.render(
        "signing_keys.html",
        page="signing-keys",
        keys=keys,
        configured=secret is not None,
        jwks_url=settings.billplane_public_url + signing.JWKS_PATH,
        default_ttl=settings.billplane_snapshot_ttl,
    )


@router.post("/signing-keys/rotate")
def rotate_signing_key(request: Request, _form: OperatorForm, view: FormView) -> Response:
    """A new key signs from the next snapshot on; the old one stays published (no secret is
    shown: a private key never leaves the database, where it is sealed)."""
    try:
        with view.tx.write() as session:
            rotated = signing.rotate(
                session, view.settings.billplane_secret_key, actor=ACTOR, now=view.now
            )
            kid, retired = rotated.key.kid, rotated.retired
            until = signing.published_until(retired) if retired else None
    except BillplaneError as exc:
        flash(request, f"The key was not rotated: {exc.message}", kind="error")
        return redirect("/signing-keys")
    kept = f" The previous key stays published until {until:%Y-%m-%d %H:%M} UTC." if until else ""
    flash(request, f"New signing key {kid}: it signs every snapshot from now on.{kept}")
    return redirect("/signing-keys")
