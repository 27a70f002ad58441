"""What every tool stands on: the server's lifespan context, the caller of a request, and the tool body's frame.

A tool reaches the domain only through `ctx.request_context.lifespan_context` (a `ToolDeps`), runs its work in a
worker thread through `run`, and answers with structured content. A refusal is a tool error whose payload is
`{"error": "<code>", "message": "<pt-BR text for the citizen>"}` (codes in `domain.errors`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.exc import OperationalError

from core.conversation_keys import PROOF_META_KEY, ConversationProof
from core.principals import Principal
from domain.access import AccessControl, Caller, Mode
from domain.errors import DomainError
from domain.wiring import Domain
from tools_mcp.auth import principal_from_access_token

# The logger the tools have always logged under, which deployments' log settings may name.
log = logging.getLogger("tools_mcp.server")

CONVERSATION_META_KEY = "atende/conversation_id"
T = TypeVar("T")


@dataclass(frozen=True)
class ToolDeps:
    """The MCP server's lifespan context: the domain, and who in-process callers are.

    `local_principal` is the identity of in-process and stdio callers; HTTP callers act for a conversation only
    with its `conversation_proof` signature (without one, never).
    """

    domain: Domain
    local_principal: Principal
    conversation_proof: ConversationProof | None

    @property
    def access(self) -> AccessControl:
        return self.domain.access


ToolContext = Context[ToolDeps, Any]
Work = Callable[[ToolDeps, Caller], dict[str, Any]]
# A tool function and its annotations, as each area lists them for the server to register.
Registration = tuple[Callable[..., Awaitable[CallToolResult]], ToolAnnotations]


def _as_text(value: Any) -> Any:
    # Models sometimes send ids as numbers; the schema still says string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_as_text)]
OptionalCpf = Annotated[
    str | None,
    Field(
        description="CPF (11 digits, with or without dots and dash, e.g. 123.456.789-09). "
        "Staff/integrations: the citizen to act on. In a conversation: optional, must be the verified citizen's."
    ),
]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
READ_ONLY_IDEMPOTENT = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
WRITE_IDEMPOTENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def deps_of(ctx: ToolContext) -> ToolDeps:
    return ctx.request_context.lifespan_context


def caller_of(ctx: ToolContext) -> Caller:
    """Who is calling, and for which conversation; a refusal writes its audit row."""
    rc = ctx.request_context
    deps = rc.lifespan_context
    principal = deps.local_principal
    request = rc.request
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        # Over HTTP the only identity is the bearer token's; never fall back to the local principal.
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            raise DomainError("forbidden")
        principal = principal_from_access_token(user.access_token)
    meta = rc.meta or {}
    conversation = meta.get(CONVERSATION_META_KEY)
    conversation_id = str(conversation).strip() if conversation else None
    if conversation_id and isinstance(scope, dict):
        # A conversation id travels through the console, logs and the citizen's browser; a token that learned
        # one must not act for its citizen. Only the app itself, holding the secret key, signs the proof.
        proof = meta.get(PROOF_META_KEY)
        if deps.conversation_proof is None or not deps.conversation_proof.valid(conversation_id, proof):
            deps.access.refuse_conversation(principal, conversation_id, "conversation_unproven")
            raise DomainError("forbidden")
    return Caller(principal, conversation_id or None)


def _ok(data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data, ensure_ascii=False))], structured_content=data
    )


def _error(payload: dict[str, str]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
        is_error=True,
    )


async def run(ctx: ToolContext, tool: str, work: Work, shape: type[BaseModel]) -> CallToolResult:
    """Runs `work` for the caller in a worker thread and shapes its answer, or reports its refusal or failure."""

    def act() -> dict[str, Any]:
        return work(deps_of(ctx), caller_of(ctx))  # in the worker thread: a refusal writes its audit row

    try:
        # Through the output model, so every declared field is present (None when not shown to this caller).
        data = shape.model_validate(await anyio.to_thread.run_sync(act)).model_dump(mode="json")
    except DomainError as exc:
        log.info("tool %s refused: %s", tool, exc.code)
        return _error(exc.as_dict())
    except OperationalError:
        log.exception("tool %s: database unavailable", tool)
        return _error(DomainError("unavailable").as_dict())
    except Exception:
        log.exception("tool %s failed", tool)
        return _error(DomainError("unavailable").as_dict())
    return _ok(data)


@dataclass(frozen=True)
class Owned:
    """One citizen's object a tool acts on: its kind and id as a refusal names them, and its owner."""

    kind: str
    object_id: str
    owner: int | None


def act_on_owned(
    deps: ToolDeps,
    caller: Caller,
    scope: str,
    target: Owned,
    act: Callable[[Mode], T],
    *,
    audit: str,
    audited_id: Callable[[T], str],
) -> T:
    """Staff with `scope`, or the conversation whose verified citizen owns `target`, may `act` on it; the act is
    audited as `audit` on the object `audited_id` names in its result, under the owner."""
    mode = deps.access.owns(caller, scope, target.owner, what=target.kind, object_id=target.object_id)
    result = act(mode)
    deps.access.record(caller, audit, target.kind, audited_id(result), citizen_id=target.owner)
    return result
