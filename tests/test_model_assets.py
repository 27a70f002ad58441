"""Assembling a model from part packages, and refusing a file that does not match the published hash."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest

from atende import model_assets
from atende.model_assets import ModelAsset, ModelAssetError, assemble, ensure_ready, is_verified


def install_parts(root: Path, monkeypatch: pytest.MonkeyPatch, parts: list[dict[str, bytes]]) -> str:
    """Create importable packages `<prefix>1`, `<prefix>2`, … each holding `data/<file>`; returns the prefix.

    A fresh prefix per test keeps import caches from one test out of the next.
    """
    prefix = f"fakeparts_{uuid.uuid4().hex[:8]}_part"
    for n, files in enumerate(parts, start=1):
        package = root / f"{prefix}{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        for name, content in files.items():
            (package / "data" / name).write_bytes(content)
    # Prepended after the files exist, so the import system's directory caches see them.
    monkeypatch.syspath_prepend(str(root))
    return prefix


def asset_for(prefix: str, n_parts: int, content: bytes, *, sha256: str | None = None) -> ModelAsset:
    return ModelAsset(
        name=f"fake-{prefix}",
        package_prefix=prefix,
        n_parts=n_parts,
        size=len(content),
        sha256=sha256 or hashlib.sha256(content).hexdigest(),
        extra="model-fake",
    )


PARTS = [{"part01.bin": b"GGUF-cabecalho-"}, {"part02.bin": b"pesos-do-meio-"}, {"part03.bin": b"fim"}]
WHOLE = b"GGUF-cabecalho-pesos-do-meio-fim"


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return install_parts(tmp_path / "site", monkeypatch, PARTS)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_assemble_writes_the_concatenated_parts_and_a_verified_stamp(packages: str, tmp_path: Path) -> None:
    asset = asset_for(packages, 3, WHOLE)
    target = tmp_path / "models" / "fake.gguf"

    assert assemble(asset, target) == target

    assert target.read_bytes() == WHOLE
    assert is_verified(asset, target)
    stamp = json.loads((tmp_path / "models" / "fake.gguf.verified.json").read_text())
    assert stamp["sha256"] == asset.sha256
    assert leftovers(target.parent) == ["fake.gguf", "fake.gguf.verified.json"]


def test_assembling_again_touches_nothing(packages: str, tmp_path: Path) -> None:
    asset = asset_for(packages, 3, WHOLE)
    target = tmp_path / "fake.gguf"
    assemble(asset, target)
    before = target.stat().st_mtime_ns
    # Without the parts a rebuild would fail, so success proves the verified file was reused.
    for n in range(1, 4):
        for part in (tmp_path / "site" / f"{packages}{n}" / "data").iterdir():
            part.unlink()

    assemble(asset, target)

    assert target.stat().st_mtime_ns == before
    assert target.read_bytes() == WHOLE


def test_a_wrong_hash_is_refused_and_leaves_no_file_behind(packages: str, tmp_path: Path) -> None:
    asset = asset_for(packages, 3, WHOLE, sha256="0" * 64)
    target = tmp_path / "models" / "fake.gguf"

    with pytest.raises(ModelAssetError, match="SHA-256"):
        assemble(asset, target)

    assert leftovers(target.parent) == []


def test_a_missing_part_names_the_extra_to_install(packages: str, tmp_path: Path) -> None:
    asset = asset_for(packages, 4, WHOLE + b"mais")

    with pytest.raises(ModelAssetError, match=r"part 4 .*pip install 'atende\[model-fake\]'"):
        assemble(asset, tmp_path / "fake.gguf")

    assert leftovers(tmp_path) == ["site"]


def test_a_failure_while_copying_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = install_parts(tmp_path / "site", monkeypatch, [{"part01.bin": b"abc"}, {}])
    # A directory matches the part pattern but cannot be read, which breaks the copy half-way.
    (tmp_path / "site" / f"{prefix}2" / "data" / "part02.bin").mkdir()
    target = tmp_path / "models" / "fake.gguf"

    with pytest.raises(IsADirectoryError):
        assemble(asset_for(prefix, 2, b"abcdef"), target)

    assert leftovers(target.parent) == []


def test_parts_are_concatenated_in_numeric_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"part10.bin": b"[10]", "part2.bin": b"[2]", "part1.bin": b"[1]"}
    packages = [{"part01.bin": bytes([n])} for n in range(1, 12)]
    packages[1] = files
    prefix = install_parts(tmp_path / "site", monkeypatch, packages)
    expected = b"\x01[1][2][10]" + bytes(range(3, 12))

    target = assemble(asset_for(prefix, 11, expected), tmp_path / "fake.gguf")

    assert target.read_bytes() == expected


def test_ensure_ready_accepts_the_assembled_file(
    packages: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = asset_for(packages, 3, WHOLE)
    monkeypatch.setitem(model_assets.MODELS, asset.name, asset)
    target = assemble(asset, tmp_path / "fake.gguf")

    assert ensure_ready(asset.name, target) == target


def test_ensure_ready_refuses_a_tampered_file(packages: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = asset_for(packages, 3, WHOLE)
    monkeypatch.setitem(model_assets.MODELS, asset.name, asset)
    target = assemble(asset, tmp_path / "fake.gguf")
    assembled_at = target.stat().st_mtime_ns
    tampered = bytearray(WHOLE)
    tampered[5] ^= 0xFF

    target.write_bytes(bytes(tampered))
    # File times are coarse (a clock tick): a rewrite this quick could keep the old mtime, so date it later.
    os.utime(target, ns=(assembled_at, assembled_at + 1_000_000_000))

    assert not is_verified(asset, target)
    with pytest.raises(ModelAssetError, match="does not match"):
        ensure_ready(asset.name, target)


def test_ensure_ready_refuses_a_file_of_the_wrong_size(
    packages: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = asset_for(packages, 3, WHOLE)
    monkeypatch.setitem(model_assets.MODELS, asset.name, asset)
    target = tmp_path / "fake.gguf"
    target.write_bytes(WHOLE[:-1])

    with pytest.raises(ModelAssetError, match="bytes, expected"):
        ensure_ready(asset.name, target)


def test_ensure_ready_re_verifies_when_the_stamp_is_damaged(
    packages: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = asset_for(packages, 3, WHOLE)
    monkeypatch.setitem(model_assets.MODELS, asset.name, asset)
    target = assemble(asset, tmp_path / "fake.gguf")
    stamp = tmp_path / "fake.gguf.verified.json"
    stamp.write_text('{"size": ')

    assert ensure_ready(asset.name, target) == target
    assert is_verified(asset, target)


def test_ensure_ready_refuses_a_missing_file(tmp_path: Path) -> None:
    name = next(iter(model_assets.MODELS))

    with pytest.raises(ModelAssetError, match="does not exist"):
        ensure_ready(name, tmp_path / "absent.gguf")


def test_ensure_ready_only_checks_that_an_operator_supplied_model_exists(tmp_path: Path) -> None:
    own = tmp_path / "own-model.gguf"

    with pytest.raises(ModelAssetError, match="not found"):
        ensure_ready("modelo-proprio", own)
    own.write_bytes(b"GGUF")
    assert ensure_ready("modelo-proprio", own) == own
