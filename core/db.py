"""Engine and session factories for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

from annotated_types import Ge, Le
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

# Ids as the API accepts them. PostgreSQL's integer columns hold 32 bits (the audit sequence 64): a larger number
# would reach the driver and fail there, a server error, instead of being refused as invalid input.
MAX_ROW_ID: Final = 2**31 - 1
RowId = Annotated[int, Ge(1), Le(MAX_ROW_ID)]
SequenceNumber = Annotated[int, Ge(1), Le(2**63 - 1)]


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL, pinning PostgreSQL to the psycopg 3 driver."""
    parsed = make_url(url)
    # "postgres://" and bare "postgresql://" are what hosting panels hand out; without a driver
    # SQLAlchemy would pick psycopg2, which is not a dependency.
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # SQLite ships with foreign keys off, per connection; WAL lets the web workers read
        # while one of them writes.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def make_engine(url: str | URL, **engine_options: Any) -> Engine:
    """Create an engine; extra keyword arguments go straight to `sqlalchemy.create_engine`."""
    parsed = normalize_url(url)
    engine_options.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **engine_options)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(parsed, **engine_options)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
