"""`atende seed` and `atende mcp serve --stdio` as an operator runs them, driven by the SDK's stdio client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from domain.seed import CITIZENS
from tools_mcp.testing import call

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ATENDE = str(Path(sys.executable).with_name("atende"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("ATENDE_")}
    return {
        **keep,
        "ATENDE_ENVIRONMENT": "test",
        "ATENDE_DATA_DIR": str(tmp_path / "var"),
        "ATENDE_VECTOR_STORE": "memory",
        "ATENDE_EMBEDDING_BACKEND": "hashing",
        **extra,
    }


async def test_the_stdio_server_acts_as_the_local_operator_with_the_configured_scopes(tmp_path: Path) -> None:
    seeded = await anyio.run_process([ATENDE, "seed"], env=_env(tmp_path), check=False)
    assert seeded.returncode == 0, seeded.stderr.decode()[-2000:]
    assert "24 citizens" in seeded.stdout.decode()
    again = await anyio.run_process([ATENDE, "seed"], env=_env(tmp_path), check=False)
    assert "(new: none)" in again.stdout.decode()

    params = StdioServerParameters(
        command=ATENDE,
        args=["mcp", "serve", "--stdio"],
        env=_env(tmp_path, ATENDE_MCP_STDIO_SCOPES="citizens:read,citizens:pii,protocols:read"),
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        found = await call(client, "citizen_lookup", {"cpf": CITIZENS[0].cpf})
        listed = await call(client, "protocol_list", {"cpf": CITIZENS[0].cpf})
        refused = await call(client, "payment_list_debts", {"cpf": CITIZENS[0].cpf})
    assert "citizen_verify" in names
    assert found.data["name"] == CITIZENS[0].name
    assert found.data["cpf_masked"].startswith("***.")
    assert len(listed.data["protocols"]) == 3
    assert refused.error == "forbidden"


def test_mcp_serve_without_stdio_explains_where_http_is() -> None:
    done = subprocess.run([ATENDE, "mcp", "serve"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "/mcp" in done.stderr
