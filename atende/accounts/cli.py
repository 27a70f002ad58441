"""`atende users …`, `atende teams …`, `atende tokens …`: account administration from the server's shell.

Actions are audited with actor "system" (whoever runs them has the server's configuration already).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from core.accounts.service import Accounts

users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
teams_app = typer.Typer(help="Teams (setores) and their hierarchy.", no_args_is_help=True)
tokens_app = typer.Typer(help="Bearer tokens for the API and MCP.", no_args_is_help=True)

ACTOR = "system"


@contextmanager
def _accounts() -> Iterator[Accounts]:
    from atende import cli
    from core.accounts.types import AccountError
    from core.i18n import t
    from core.migrate import upgrade

    settings = cli._settings()
    with cli._open_services(settings) as services:
        upgrade(settings.resolved_database_url)
        try:
            yield services.accounts
        except AccountError as exc:
            typer.echo(t(exc.key, **exc.params), err=True)
            for problem in exc.extra.get("problems", []):
                typer.echo(f"  - {t(problem, **exc.params)}", err=True)
            raise typer.Exit(1) from exc


def _role(value: str) -> str:
    from core.accounts.roles import parse_role

    try:
        return parse_role(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name: 3-64 lower-case letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help="admin, supervisor, agent, content_editor, evaluator or integrator")],
    team: Annotated[str | None, typer.Option(help="Team name or id")] = None,
    display_name: Annotated[str, typer.Option(help="Full name")] = "",
    email: Annotated[str | None, typer.Option(help="E-mail (single sign-on matches on it)")] = None,
    oidc_subject: Annotated[str | None, typer.Option(help="Link to an SSO identity: <provider>:<sub>")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Create a staff account. Without --password-stdin a temporary password is printed, to be changed at the
    first sign-in."""
    from core.accounts.roles import parse_role
    from core.accounts.types import SYSTEM

    checked = parse_role(_role(role))
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with _accounts() as accounts:
        user, temporary = accounts.directory.create_user(
            username,
            checked,
            team=team,
            password=password,
            display_name=display_name,
            email=email,
            oidc_subject=oidc_subject,
            actor=ACTOR,
            origin=SYSTEM,
        )
    typer.echo(f"created user {user.username} (id {user.id}, role {user.role})")
    if temporary:
        typer.echo(f"temporary password (shown once; must be changed at the first sign-in): {temporary}")


@users_app.command("list")
def users_list() -> None:
    """Every account with its role, team and state."""
    with _accounts() as accounts:
        now = accounts.clock()
        for user in accounts.directory.users():
            state = "disabled" if not user.is_active else ("locked" if user.locked(now) else "active")
            two_factor = "2fa" if user.totp_enabled else "-"
            typer.echo(f"{user.id}\t{user.username}\t{user.role}\tteam={user.team_id}\t{state}\t{two_factor}")


def _user_command(name: str, help_text: str) -> None:
    def command(username: Annotated[str, typer.Argument(help="The account's username")]) -> None:
        from core.accounts.directory import UserChanges
        from core.accounts.types import SYSTEM

        with _accounts() as accounts:
            user = accounts.directory.require(username)
            if name == "disable":
                accounts.directory.disable(user.id, actor=ACTOR, origin=SYSTEM)
            elif name == "enable":
                accounts.directory.update_user(user.id, UserChanges(is_active=True), actor=ACTOR, origin=SYSTEM)
            elif name == "unlock":
                accounts.directory.unlock(user.id, actor=ACTOR, origin=SYSTEM)
            elif name == "reset-2fa":
                accounts.directory.reset_two_factor(user.id, actor=ACTOR, origin=SYSTEM)
            elif name == "reset-password":
                _, temporary = accounts.directory.reset_password(user.id, actor=ACTOR, origin=SYSTEM)
                typer.echo(f"temporary password (shown once; must be changed at the first sign-in): {temporary}")
        typer.echo(f"{name}: {user.username} done")

    command.__doc__ = help_text
    users_app.command(name)(command)


_user_command("disable", "Disable an account: its sessions end and its tokens stop working.")
_user_command("enable", "Enable a disabled account again.")
_user_command("unlock", "Lift a lock-out after too many failed sign-ins.")
_user_command("reset-2fa", "Remove two-factor (lost phone); the member enrols again at the next sign-in.")
_user_command("reset-password", "Set a temporary password (printed once); every session of the account ends.")


@teams_app.command("create")
def teams_create(
    name: Annotated[str, typer.Argument(help="Team name")],
    parent: Annotated[str | None, typer.Option(help="Parent team name or id")] = None,
) -> None:
    """Create a team, optionally under another (supervisors see the teams below theirs)."""
    from core.accounts.types import SYSTEM

    with _accounts() as accounts:
        team = accounts.directory.create_team(name, parent=parent, actor=ACTOR, origin=SYSTEM)
    typer.echo(f"created team {team.name} (id {team.id}, parent {team.parent_id})")


@teams_app.command("list")
def teams_list() -> None:
    """Every team with its parent."""
    with _accounts() as accounts:
        for team in accounts.directory.teams():
            typer.echo(f"{team.id}\t{team.name}\tparent={team.parent_id}")


@tokens_app.command("create")
def tokens_create(
    scope: Annotated[list[str], typer.Option(help="A scope; repeat for several (e.g. --scope protocols:read)")],
    integration: Annotated[str | None, typer.Option(help="The system that will hold the token")] = None,
    user: Annotated[str | None, typer.Option(help="Or: the staff member holding it (bounded by their role)")] = None,
    name: Annotated[str, typer.Option(help="A label for lists")] = "",
    expires_days: Annotated[
        int | None, typer.Option(help="Days until it expires (default and maximum: ATENDE_TOKEN_MAX_DAYS, 90)")
    ] = None,
) -> None:
    """Issue a bearer token for the API and MCP. It is printed once and never stored in clear."""
    from core.accounts.permissions import SCOPES

    if (integration is None) == (user is None):
        raise typer.BadParameter("give exactly one of --integration or --user", param_hint="--integration/--user")
    unknown = sorted(set(scope) - SCOPES)
    if unknown:
        raise typer.BadParameter(f"unknown scopes {unknown}; known: {sorted(SCOPES)}", param_hint="--scope")
    if expires_days is not None and expires_days < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--expires-days")
    with _accounts() as accounts:
        owner = accounts.directory.require(user) if user else None
        issued = accounts.tokens.issue(
            name=name or integration or (owner.username if owner else "token"),
            scopes=scope,
            created_by=ACTOR,
            integration=integration,
            user_id=owner.id if owner else None,
            expires_in=timedelta(days=expires_days) if expires_days else None,
        )
    expires = f"{issued.info.expires_at:%Y-%m-%d}" if issued.info.expires_at else "?"
    typer.echo(
        f"token {issued.info.id} for {issued.info.owner}, scopes {' '.join(issued.info.scopes)}, expires {expires}"
    )
    typer.echo(issued.token)


@tokens_app.command("approve")
def tokens_approve(token_id: Annotated[int, typer.Argument(help="The token's id (see `atende tokens list`)")]) -> None:
    """Approve a token with data scopes that an integrator issued: it authenticates from now on."""
    from core.accounts.types import AccountError

    with _accounts() as accounts:
        info = accounts.tokens.approve(token_id, actor=ACTOR)
        if info is None:
            raise AccountError("token_not_found", 404)
    typer.echo(f"approved token {token_id} for {info.owner}, scopes {' '.join(info.scopes)}")


@tokens_app.command("list")
def tokens_list() -> None:
    """Issued tokens (their prefixes only)."""
    with _accounts() as accounts:
        for info in accounts.tokens.list():
            if info.revoked_at:
                state = "revoked"
            elif info.pending:
                state = "pending approval"
            else:
                state = f"expires {info.expires_at:%Y-%m-%d}" if info.expires_at else "no expiry (refused)"
            typer.echo(f"{info.id}\t{info.prefix}…\t{info.owner}\t{' '.join(info.scopes)}\t{state}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see `atende tokens list`)")]) -> None:
    """Revoke a token: it stops working at once."""
    from core.accounts.types import AccountError

    with _accounts() as accounts:
        info = accounts.tokens.revoke(token_id, actor=ACTOR)
        if info is None:
            raise AccountError("token_not_found", 404)
    typer.echo(f"revoked token {token_id}")
