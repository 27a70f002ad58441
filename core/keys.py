"""The deployment's own secrets: what production must be given, and what development makes for itself.

Production (the default environment) refuses to start unless ATENDE_SECRET_KEY, ATENDE_ENCRYPTION_KEYS and
ATENDE_BLIND_INDEX_KEY are set to real, independent keys. An explicit development or test environment that
lacks them generates random ones once and keeps them in `<ATENDE_DATA_DIR>/keys.env` (mode 0600), so every
process on that data directory, and the next start, reads the same keys. No key is ever derived from a
constant or from another secret (docs/decisions/0038-fail-closed-defaults.md).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

KEYS_FILE = "keys.env"
SECRET_KEY = "ATENDE_SECRET_KEY"
ENCRYPTION_KEYS = "ATENDE_ENCRYPTION_KEYS"
BLIND_INDEX_KEY = "ATENDE_BLIND_INDEX_KEY"

MIN_KEY_CHARS = 32
MIN_DISTINCT_CHARS = 10
# Values from documentation, examples and older defaults: public, so never a key.
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "changeme", "secret", "dev-secret-change-me"})
PLACEHOLDER_FRAGMENTS = ("change-me", "changeme", "changethis", "change_me", "dev-secret", "placeholder", "example")

HOW_TO_GENERATE = {
    SECRET_KEY: 'python -c "import secrets; print(secrets.token_urlsafe(48))"',
    ENCRYPTION_KEYS: "atende lgpd generate-key",
    BLIND_INDEX_KEY: 'python -c "import secrets; print(secrets.token_urlsafe(48))"',
}


class KeyFileError(ValueError):
    """The development keys file cannot be written or read."""


def is_placeholder(value: str) -> bool:
    folded = value.strip().lower()
    return folded in PLACEHOLDER_SECRETS or any(fragment in folded for fragment in PLACEHOLDER_FRAGMENTS)


def secret_problem(name: str, value: str) -> str | None:
    """Why `value` is not a real key for variable `name`, or None.

    The rule is deliberately simple to explain: at least 32 characters, at least 10 different characters, and
    nothing that looks like a placeholder. A randomly generated key passes; `x`, `s` * 40 or a sentence does not.
    """
    stripped = value.strip()
    how = f"generate one with `{HOW_TO_GENERATE[name]}`"
    if not stripped:
        return f"{name} is not set ({how})"
    if is_placeholder(stripped):
        return f"{name} is a public placeholder, not a secret ({how})"
    if len(stripped.encode()) < MIN_KEY_CHARS:
        return f"{name} is too short: at least {MIN_KEY_CHARS} characters of random key material are needed ({how})"
    if len(set(stripped)) < MIN_DISTINCT_CHARS:
        return f"{name} has too few different characters to be random ({how})"
    return None


def fernet_keys_problem(value: str) -> str | None:
    """Why ATENDE_ENCRYPTION_KEYS is not a list of real Fernet keys, or None. Never echoes a key."""
    how = f"generate one with `{HOW_TO_GENERATE[ENCRYPTION_KEYS]}`"
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        return f"{ENCRYPTION_KEYS} is not set ({how})"
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            return f"{ENCRYPTION_KEYS}: key #{position} is not a valid Fernet key ({how})"
        if len(set(raw)) < MIN_DISTINCT_CHARS:
            return f"{ENCRYPTION_KEYS}: key #{position} is not random ({how})"
    return None


def production_problems(values: Mapping[str, str]) -> list[str]:
    """Every reason the three keys cannot run production, each naming its variable and how to make one."""
    problems = [
        problem
        for problem in (
            secret_problem(SECRET_KEY, values.get(SECRET_KEY, "")),
            fernet_keys_problem(values.get(ENCRYPTION_KEYS, "")),
            secret_problem(BLIND_INDEX_KEY, values.get(BLIND_INDEX_KEY, "")),
        )
        if problem
    ]
    secret, index = values.get(SECRET_KEY, "").strip(), values.get(BLIND_INDEX_KEY, "").strip()
    if secret and secret == index:
        problems.append(f"{BLIND_INDEX_KEY} must be its own key, not a copy of {SECRET_KEY}")
    return problems


def new_keys() -> dict[str, str]:
    """Three fresh random keys; the Fernet key is 32 random bytes, as `Fernet.generate_key` makes it."""
    return {
        SECRET_KEY: secrets.token_urlsafe(48),
        ENCRYPTION_KEYS: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        BLIND_INDEX_KEY: secrets.token_urlsafe(48),
    }


def _parse(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def development_keys(data_dir: Path, environment: str) -> dict[str, str]:
    """The keys kept in `data_dir/keys.env`, created there (0600) by the first process that needs them.

    Two processes starting together agree: each writes a complete file under a temporary name and hard-links it
    into place, which fails for all but the first; the others read the winner's file.
    """
    path = data_dir / KEYS_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KeyFileError(f"cannot read development keys from {path} ({exc.strerror})") from None
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".keys-", dir=data_dir)  # mode 0600
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(
                    f"# Random keys for this {environment} data directory, generated by atende on first start.\n"
                    "# Never copy them to production: production must be given its own keys.\n"
                )
                for name, value in new_keys().items():
                    handle.write(f"{name}={value}\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                return _read(path)
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise KeyFileError(
            f"cannot keep development keys in {path} ({exc.strerror}): make ATENDE_DATA_DIR writable or set "
            f"{SECRET_KEY}, {ENCRYPTION_KEYS} and {BLIND_INDEX_KEY}"
        ) from None
    log.warning(
        "Generated random %s keys in %s (%s, %s, %s): fine for this data directory only; production needs its own",
        environment,
        path,
        SECRET_KEY,
        ENCRYPTION_KEYS,
        BLIND_INDEX_KEY,
    )
    return _read(path)


def _read(path: Path) -> dict[str, str]:
    values = _parse(path.read_text(encoding="utf-8"))
    missing = [name for name in (SECRET_KEY, ENCRYPTION_KEYS, BLIND_INDEX_KEY) if not values.get(name)]
    if missing:
        raise KeyFileError(f"{path} lacks {', '.join(missing)}: add them or delete the file to have new ones made")
    return values
