"""Turning request paths into filesystem paths that can never leave the simulator's root.

A refused path is an :class:`~fahflow.sim.errors.HttpError` 400 naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from fahflow.sim.errors import bad_request
from fahflow.sim.layout import is_results
from fahflow.sim.records import FileEntry


def safe_relpath(raw: str) -> PurePosixPath:
    """A relative path from a URL piece; refuses ``..``, ``.``, empty parts, absolute paths,
    backslashes and NUL (after percent-decoding, so ``%2e%2e%2f`` is caught too)."""
    text = unquote(raw)
    if not text or text.startswith("/") or "\\" in text or "\x00" in text:
        raise bad_request(f"refused path {text!r}: must be a plain relative path")
    parts = text.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise bad_request(f"refused path {text!r}: no '.', '..' or empty parts")
    return PurePosixPath(*parts)


def resolve_under(base: Path, raw: str) -> Path:
    """``base / raw`` resolved, refused if it (or a symlink on the way) escapes ``base``."""
    target = (base / safe_relpath(raw)).resolve()
    if not target.is_relative_to(base.resolve()):
        raise bad_request(f"refused path {unquote(raw)!r}: escapes its directory")
    return target


def is_temp(path: Path) -> bool:
    """Temporary files of :mod:`fahflow.atomic` (``.name.xxx.tmp``) are never listed."""
    return path.name.startswith(".")


def list_files(base: Path, skip_results: bool = False) -> list[FileEntry]:
    """Every regular file under ``base``, with size and mtime, sorted by path.

    ``skip_results`` leaves out ``RUN*/CLONE*/results*/`` (returned results), so that the project
    listing shows the inputs we uploaded.
    """
    if not base.is_dir():
        return []
    out = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or any(is_temp(Path(p)) for p in path.relative_to(base).parts):
            continue
        rel = path.relative_to(base)
        if skip_results and is_results(rel):
            continue
        stat = path.stat()
        out.append(
            FileEntry(
                path=rel.as_posix(),
                size=stat.st_size,
                modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            )
        )
    return out
