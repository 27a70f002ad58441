"""Request bodies of the console and handoff routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str = Field(min_length=1, max_length=64)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=64, description="One of the close reason codes.")


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(pattern="^(online|paused|offline)$")


class SurveyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


class HandoffRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str | None = Field(default=None, max_length=64)


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(min_length=1, max_length=255, description='The agent\'s subject ("user:7"), or "me".')


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    teams: list[str] = Field(min_length=1, max_length=20)
    capacity: int = Field(ge=1, le=50)
    skills: list[str] = Field(default_factory=list, max_length=50)
    languages: list[str] = Field(default_factory=lambda: ["pt-BR"], min_length=1, max_length=10)
