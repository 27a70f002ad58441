"""Run the Alembic migrations shipped inside the package, without an alembic.ini.

A new revision is drafted with `alembic.command.revision(alembic_config(url, atende.schema.metadata), "message",
autogenerate=True)` against an up-to-date database, then reviewed by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL

from core.db import make_engine, normalize_url

if TYPE_CHECKING:
    from core.lgpd.crypto import FieldCipher

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL | None = None, target_metadata: MetaData | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (for `command.*` calls); `target_metadata`, the
    whole schema, is needed only to draft a revision."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR.as_posix())
    if target_metadata is not None:
        config.attributes["target_metadata"] = target_metadata
    if url is not None:
        # ConfigParser treats "%" as interpolation, and URL-encoded passwords are full of it.
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def _run(url: str | URL, action: Callable[[Config], None], cipher: FieldCipher | None = None) -> None:
    # Our own engine, so SQLite gets its pragmas and PostgreSQL its driver and connect options.
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # App processes starting together on one schema would run the same DDL at once (the loser dies
                # on a duplicate alembic_version); this lock, held until commit, makes the others wait and then
                # find the schema at head. Keyed by schema, so unrelated schemas never wait on each other.
                connection.execute(text("SELECT pg_advisory_xact_lock(7207, hashtext(current_schema()))"))
            config = alembic_config()
            config.attributes["connection"] = connection
            if cipher is not None:
                config.attributes["field_cipher"] = cipher
            action(config)
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head", *, cipher: FieldCipher | None = None) -> None:
    """Bring the database at `url` up to `revision` (the latest by default).

    Revisions that encrypt existing rows (0008) use `cipher`; without one they build it from the environment's
    settings, and only when there is a row to convert.
    """
    _run(url, lambda config: command.upgrade(config, revision), cipher)


def downgrade(url: str | URL, revision: str = "base", *, cipher: FieldCipher | None = None) -> None:
    """Roll the database at `url` back to `revision` (an empty schema by default)."""
    _run(url, lambda config: command.downgrade(config, revision), cipher)


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
