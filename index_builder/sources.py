"""Which files of the knowledge folder are read, and how much of them.

Only regular files that really live inside the knowledge folder are documents. A link is resolved
first: a link to another file of the folder is read (once, under the link's own name unless the
target is a document itself); a link that leads outside the folder, to a device, a FIFO or a socket,
a broken link or a link loop is refused and reported, and never opened. Reading opens the resolved
path without following a last link and without blocking, checks again that it is a regular file and
reads at most the size limit, so a file swapped for a FIFO or grown after the folder was listed cannot
hang or flood the build.

Limits (each refusal names the limit and the setting that raises it):
- QABOT_MAX_DOCUMENT_BYTES: bytes per knowledge file; a larger file is skipped and reported;
- QABOT_MAX_PASSAGE_CHARS: characters per paragraph or list item; a longer one is skipped and reported
  (see parser.py);
- front matter: at most MAX_FRONT_MATTER_BYTES, no YAML anchors or aliases, nested at most
  MAX_FRONT_MATTER_DEPTH deep (see parser.py).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bot.config import DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_PASSAGE_CHARS, Settings

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt")

# The two settings' defaults live in bot/config.py. A knowledge file is an article or a manual: 2 MB is
# a 300,000-word book. Building costs about 20 ms of embedding per sentence on two CPU cores, so the
# limit also bounds a build's time. Passages are usually a paragraph of a few hundred characters: a
# 20,000-character paragraph is ~250 sentences (seconds to embed); a 1 MB one is ~13,000 (minutes).

MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_FRONT_MATTER_DEPTH = 20

DOCUMENT_BYTES_SETTING = "QABOT_MAX_DOCUMENT_BYTES"
PASSAGE_CHARS_SETTING = "QABOT_MAX_PASSAGE_CHARS"


class DocumentError(ValueError):
    """A knowledge file cannot be read or parsed; the message names the file. The build stops."""


class RefusedDocument(DocumentError):
    """A knowledge file qabot will not read (too big, no longer a regular file): skipped and reported."""


@dataclass(frozen=True)
class SourceLimits:
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceLimits:
        return cls(int(settings.max_document_bytes), int(settings.max_passage_chars))

    @classmethod
    def from_env(cls) -> SourceLimits:
        """The limits set in the environment or `.env` (see .env.example); defaults otherwise."""
        return cls.from_settings(Settings.from_env())


@dataclass(frozen=True)
class SourceFile:
    rel: str  # the name in the knowledge folder, forward slashes (a link keeps its own name)
    path: Path  # the regular file to read: a link's resolved target


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _too_big(rel: str, size: int, limit: int) -> str:
    return (
        f"{rel}: skipped: {size:,} bytes is over the limit of {limit:,} bytes per document "
        f"({DOCUMENT_BYTES_SETTING} raises it)"
    )


def _resolve_link(path: Path, rel: str, root: Path) -> tuple[Path, os.stat_result] | str:
    """(target, its stat) for a link to a regular file inside root, else why it is refused."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return f"{rel}: skipped: a broken link (to {os.readlink(path)})"
    except (RuntimeError, OSError) as err:  # a loop: RuntimeError before Python 3.13, ELOOP after
        if isinstance(err, OSError) and err.errno not in (errno.ELOOP, None):
            return f"{rel}: skipped: the link cannot be followed ({err.strerror or err})"
        return f"{rel}: skipped: a link loop"
    try:
        info = os.stat(target)  # stat, never open: a FIFO cannot block here
    except OSError as err:
        return f"{rel}: skipped: the link's target cannot be read ({err.strerror or err})"
    if not stat.S_ISREG(info.st_mode):
        return f"{rel}: skipped: a link to {_kind(info.st_mode)} ({target}), not a regular file"
    if not target.is_relative_to(root):
        return f"{rel}: skipped: a link to a file outside the knowledge folder ({target})"
    return target, info


def discover(knowledge_dir: Path, limits: SourceLimits | None = None) -> tuple[list[SourceFile], list[str]]:
    """The documents of a knowledge folder in a stable order, and one line per file refused.

    Hidden files and folders and files of other types are left out without a word; linked folders
    are not followed (reported).
    """
    limits = limits or SourceLimits()
    root = Path(knowledge_dir).resolve()
    listed: list[tuple[str, Path, os.stat_result]] = []
    warnings: list[str] = []

    def unreadable(err: OSError) -> None:
        try:
            where = Path(err.filename).relative_to(root).as_posix()
        except (TypeError, ValueError):
            where = "."
        warnings.append(f"{where}: skipped: the folder cannot be read ({err.strerror or err})")

    for folder, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(folder)
        for name in sorted(dirnames):
            if name.startswith(".") or not (here / name).is_symlink():
                continue
            rel = (here / name).relative_to(root).as_posix()
            warnings.append(f"{rel}: skipped: a link to a folder; linked folders are not followed")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            try:
                info = os.lstat(path)
            except OSError as err:
                warnings.append(f"{rel}: skipped: cannot be read ({err.strerror or err})")
                continue
            if stat.S_ISLNK(info.st_mode):
                resolved = _resolve_link(path, rel, root)
                if isinstance(resolved, str):
                    warnings.append(resolved)
                    continue
                listed.append((rel, *resolved))
            elif stat.S_ISREG(info.st_mode):
                listed.append((rel, path, info))
            else:
                warnings.append(f"{rel}: skipped: {_kind(info.st_mode)}, not a regular file")

    found: list[SourceFile] = []
    read_as: dict[Path, str] = {}  # each file is indexed once: under its own name, else its first link's
    for rel, path, info in sorted(listed, key=lambda item: (root / item[0] != item[1], item[0])):
        if path in read_as:
            warnings.append(
                f"{rel}: skipped: a link to {path.relative_to(root).as_posix()}, indexed as {read_as[path]}"
            )
            continue
        read_as[path] = rel
        if info.st_size > limits.max_document_bytes:
            warnings.append(_too_big(rel, info.st_size, limits.max_document_bytes))
            continue
        found.append(SourceFile(rel, path))
    return sorted(found, key=lambda source: source.rel), warnings


def read_bytes(source: SourceFile, limits: SourceLimits | None = None) -> bytes:
    """The file's bytes, read without following a last link, without blocking, and within the limit.

    Raises RefusedDocument when the file is no longer a regular file or has grown over the limit,
    DocumentError when it cannot be read.
    """
    limits = limits or SourceLimits()
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(source.path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RefusedDocument(f"{source.rel}: skipped: it became a link after the folder was listed") from err
        raise DocumentError(f"{source.rel}: cannot be read ({err.strerror or err})") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedDocument(f"{source.rel}: skipped: {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limits.max_document_bytes:
            raise RefusedDocument(_too_big(source.rel, info.st_size, limits.max_document_bytes))
        chunks: list[bytes] = []
        remaining = limits.max_document_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as err:
        raise DocumentError(f"{source.rel}: cannot be read ({err.strerror or err})") from err
    finally:
        os.close(fd)
    if len(data) > limits.max_document_bytes:
        raise RefusedDocument(_too_big(source.rel, len(data), limits.max_document_bytes))
    return data
