"""The citizen tools: the masked registration, and identity verification for the conversation."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from domain.access import Caller
from domain.citizens import citizen_profile
from domain.errors import DomainError
from tools_mcp.tools.base import READ_ONLY, WRITE_IDEMPOTENT, OptionalCpf, Registration, ToolContext, ToolDeps, run


class CitizenLookupResult(BaseModel):
    citizen_id: str
    name: str
    cpf_masked: str = Field(description="Masked CPF, e.g. ***.456.789-**")
    birth_date_masked: str | None = Field(description="Birth year only, e.g. **/**/1985")
    phone_masked: str | None
    email_masked: str | None
    verified: bool = Field(description="Whether this conversation verified this citizen (citizen_verify)")


class CitizenVerifyResult(BaseModel):
    verified: bool
    first_name: str | None = Field(description="First name, to greet the citizen (only when verified)")
    attempts_left: int = Field(description="Attempts left before verification is blocked for a while")


async def citizen_lookup(ctx: ToolContext, cpf: OptionalCpf = None) -> Annotated[CallToolResult, CitizenLookupResult]:
    """Shows the citizen's registration, masked, to confirm who they are.

    In a conversation it returns only the verified citizen (call citizen_verify first); staff and
    integrations with citizens:read and citizens:pii may look up any CPF.
    """

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        access = deps.access
        subject = access.subject(caller, "citizens:read", cpf)
        citizen = deps.domain.citizens.get(subject.citizen_id)
        if citizen is None:
            raise DomainError("not_found", "tools.error.citizen_not_found")
        verified = access.verified_citizen(caller) == citizen.id
        access.record(caller, "citizen.read", "citizen", str(citizen.id), tool="citizen_lookup")
        return citizen_profile(citizen, verified=verified)

    return await run(ctx, "citizen_lookup", work, CitizenLookupResult)


async def citizen_verify(
    ctx: ToolContext,
    cpf: Annotated[str, Field(description="Citizen's CPF, 11 digits, with or without punctuation")],
    birth_date: Annotated[
        str, Field(description="Birth date (data de nascimento): DD/MM/AAAA or AAAA-MM-DD, e.g. 15/03/1985")
    ],
) -> Annotated[CallToolResult, CitizenVerifyResult]:
    """Verifies the citizen's identity for this conversation with CPF and birth date.

    On success the conversation may use their personal data (protocols, debts, appointments) for a while.
    A mismatch returns verified=false with the attempts left; too many attempts are refused (rate_limited).
    """

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        deps.access.mode(caller, "citizens:write")
        if caller.conversation_id is None:
            raise DomainError("invalid_argument", "tools.error.no_conversation")
        outcome = deps.domain.verifier.verify(caller.conversation_id, cpf, birth_date, actor=caller.actor)
        return {
            "verified": outcome.verified,
            "first_name": outcome.first_name,
            "attempts_left": outcome.attempts_left,
        }

    return await run(ctx, "citizen_verify", work, CitizenVerifyResult)


TOOLS: tuple[Registration, ...] = (
    (citizen_lookup, READ_ONLY),
    (citizen_verify, WRITE_IDEMPOTENT),
)
