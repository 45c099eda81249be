"""Admin API bodies for projects and features."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from billplane.schemas import NO_NUL_PATTERN, FeatureType, Key, Name, Request, Status
from billplane.settings import SNAPSHOT_TTL_MAX, SNAPSHOT_TTL_MIN


def _base_urls(urls: list[AnyHttpUrl]) -> list[AnyHttpUrl]:
    for url in urls:
        if url.query or url.fragment:
            raise ValueError("an origin is a base URL, without query or fragment")
    return urls


Unit = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL_PATTERN)]

# The app's base URLs: checkout and portal return only under one of them (no open redirect).
Origins = Annotated[list[AnyHttpUrl], Field(max_length=50), AfterValidator(_base_urls)]

SnapshotTtl = Annotated[int, Field(ge=SNAPSHOT_TTL_MIN, le=SNAPSHOT_TTL_MAX)]
SNAPSHOT_TTL_MEANING = (
    "How long the project's signed snapshots (entitlements asked as `application/jwt`) are"
    f" valid, in seconds ({SNAPSHOT_TTL_MIN} to {SNAPSHOT_TTL_MAX:,}); null: the server's"
    " BILLPLANE_SNAPSHOT_TTL (3600 unless set)."
)


class ProjectIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"key": "realtyos", "name": "RealtyOS", "origins": ["https://app.realtyos.com"]}
            ]
        }
    )

    key: Key
    name: Name
    origins: Origins = []

    def origin_strings(self) -> list[str]:
        return [str(u).rstrip("/") for u in self.origins]


class ProjectPatch(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"origins": ["https://app.realtyos.com", "https://staging.realtyos.com"]},
                {"snapshot_ttl_seconds": 900},
            ]
        }
    )

    name: Name | None = None
    origins: Origins | None = None
    snapshot_ttl_seconds: SnapshotTtl | None = Field(
        default=None, description=SNAPSHOT_TTL_MEANING + " Left out: unchanged."
    )

    @property
    def snapshot_ttl_given(self) -> bool:
        """Whether the body sets the lifetime (a null sets it back to the server's default)."""
        return "snapshot_ttl_seconds" in self.model_fields_set

    def origin_strings(self) -> list[str] | None:
        return None if self.origins is None else [str(u).rstrip("/") for u in self.origins]


class ProjectOut(BaseModel):
    key: str
    name: str
    origins: list[str]
    created_at: datetime
    snapshot_ttl_seconds: int | None = Field(description=SNAPSHOT_TTL_MEANING)


class NewProjectOut(ProjectOut):
    token: str = Field(description="The project's first token. Shown only this once.")
    token_id: str
    token_prefix: str


class FeatureIn(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "listings.publish",
                    "name": "Published listings",
                    "type": "limit",
                    "unit": "listing",
                }
            ]
        }
    )

    key: Key
    name: Name
    type: FeatureType
    unit: Unit | None = None


class FeaturePatch(Request):
    """A feature's key and type stay: grants and usage are kept under them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Published listings", "unit": "listing"}, {"status": "archived"}]
        }
    )

    name: Name | None = None
    unit: Unit | None = Field(default=None, description="null removes the unit")
    status: Status | None = None


class FeatureOut(BaseModel):
    key: str
    name: str
    type: FeatureType
    unit: str | None
    status: Status = Field(description="`archived`: every check of it is refused")
