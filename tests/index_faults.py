"""Ways to damage an index version the way disks, people and copies do (used by the CLI and core tests).

Only the standard library: the same faults can be replayed against older code. Every change writes a
new file and renames it over the old one, so a file hard-linked with another index copy (the 90 MB
ONNX model is) is never changed in place.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
MANIFEST_CHECKSUM = "manifest.sha256"


def version_dir(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def replace_file(path: Path, data: bytes) -> None:
    """Give `path` new contents through a new inode (rename), never by writing into a shared one."""
    tmp = path.with_name(path.name + ".tmp-fault")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def scramble_onnx_weights(index_dir: Path, size: int = 64 * 1024) -> None:
    """64 KiB of the ONNX weights scrambled, the file size unchanged (the model still parses)."""
    path = version_dir(index_dir) / "encoder" / "model.onnx"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes(reversed(data[middle : middle + size]))
    replace_file(path, bytes(data))


def flip_tokenizer_byte(index_dir: Path) -> None:
    """One flipped bit in tokenizer.json: its opening brace becomes 'z' (same size, no longer JSON)."""
    path = version_dir(index_dir) / "encoder" / "tokenizer.json"
    data = bytearray(path.read_bytes())
    assert data[0:1] == b"{"
    data[0] ^= 0x01
    replace_file(path, bytes(data))


def other_versions_encoder_config(index_dir: Path) -> None:
    """encoder.json as a build with max_seq_length 128 would have written it: same size, other content."""
    path = version_dir(index_dir) / "encoder" / "encoder.json"
    text = path.read_text(encoding="utf-8")
    assert '"max_seq_length": 256' in text
    replace_file(path, text.replace('"max_seq_length": 256', '"max_seq_length": 128').encode("utf-8"))


def other_versions_tokenizer(index_dir: Path) -> None:
    """tokenizer.json of another vocabulary: two word pieces swap ids (same size, valid JSON, parses)."""
    path = version_dir(index_dir) / "encoder" / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    assert '"machine": 3698' in text and '"learning": 4083' in text
    swapped = text.replace('"machine": 3698', '"MACHINE": 3698').replace('"learning": 4083', '"machine": 4083')
    swapped = swapped.replace('"MACHINE": 3698', '"learning": 3698')
    assert len(swapped) == len(text) and swapped != text
    replace_file(path, swapped.encode("utf-8"))


def read_manifest(index_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir(index_dir) / MANIFEST).read_text(encoding="utf-8"))


def write_manifest(index_dir: Path, manifest: Any, *, update_checksum: bool) -> None:
    """Replace manifest.json; with update_checksum its sidecar is rewritten to match (someone who
    "fixes" the checksum after editing, or a builder bug), without it the sidecar is left as it was."""
    raw = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    version = version_dir(index_dir)
    replace_file(version / MANIFEST, raw)
    if update_checksum:
        replace_file(version / MANIFEST_CHECKSUM, f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST}\n".encode())


def edit_manifest(index_dir: Path, *, update_checksum: bool = False, **changes: Any) -> None:
    manifest = read_manifest(index_dir)
    manifest.update(changes)
    write_manifest(index_dir, manifest, update_checksum=update_checksum)


def edit_title(index_dir: Path, title: str = "Totally Different Title", *, update_checksum: bool = False) -> None:
    manifest = read_manifest(index_dir)
    manifest["documents"][0]["title"] = title
    write_manifest(index_dir, manifest, update_checksum=update_checksum)


def replace_consistently(index_dir: Path, name: str, data: bytes) -> None:
    """Replace one file and record its new checksum in the manifest (and the manifest's own): what a
    builder that wrote bad bytes would leave. Checksums pass; only parsing the file can notice."""
    version = version_dir(index_dir)
    replace_file(version / name, data)
    manifest = read_manifest(index_dir)
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    write_manifest(index_dir, manifest, update_checksum=True)
