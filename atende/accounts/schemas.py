"""Request bodies of the account API (they document the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.accounts.roles import Role
from core.db import RowId

# Long enough for any real password or code; short enough that nobody can make argon2 chew on megabytes.
_SECRET = 1024


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=_SECRET)
    totp_code: str | None = Field(default=None, max_length=64, description="TOTP code or a recovery code.")


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=_SECRET)
    new_password: str = Field(min_length=1, max_length=_SECRET)


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=64)


class TotpDisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=_SECRET)
    code: str = Field(min_length=1, max_length=64)


class UserCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=64)
    role: Role
    team_id: RowId | None = None
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(
        default=None, max_length=_SECRET, description="Omit to get a temporary password, changed at first sign-in."
    )


class UserUpdateIn(BaseModel):
    """Only the fields present change."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    team_id: RowId | None = None
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    is_active: bool | None = None


class TeamCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    parent_id: RowId | None = None


class TeamUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=120)
    parent_id: RowId | None = None


class TokenCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(min_length=1, max_length=32)
    integration: str | None = Field(
        default=None, max_length=120, description="The system holding the token; omit for a personal token."
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
