"""Stage directories, manifests and their validation.

A finished stage lives in ``run_dir/<stage>/<key>/`` and holds a
``manifest.json`` listing every file with its size and SHA-256. The work
happens in ``run_dir/<stage>/<key>.partial/`` (kept across a killed run so
training checkpoints and zarr stores can resume); the manifest is written
there last, atomically, and the folder is then renamed to ``<key>``. A folder
without a valid manifest is never taken as done.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from .._utils import atomic_path, file_sha256

__all__ = ["MANIFEST", "hash_files", "read_manifest", "validate_manifest", "write_manifest"]

MANIFEST = "manifest.json"


def _iter_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == MANIFEST or name.startswith(".") and name.endswith(".tmp"):
                continue
            yield rel, p


def hash_files(root: Path) -> dict[str, dict]:
    """``{relative path: {"size": int, "sha256": str}}`` for every file under ``root``."""
    return {
        rel: {"size": p.stat().st_size, "sha256": file_sha256(p)} for rel, p in _iter_files(root)
    }


def write_manifest(root: Path, info: dict) -> dict:
    """Hash everything under ``root`` and write ``root/manifest.json`` atomically (last)."""
    manifest = dict(info)
    manifest["files"] = hash_files(root)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with atomic_path(root / MANIFEST, suffix=".json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
    return manifest


def read_manifest(root: Path) -> dict | None:
    """The manifest of a stage folder, or None if absent or unreadable."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def validate_manifest(root: Path, key: str, *, check_hashes: bool = True) -> str | None:
    """Return None when ``root`` is a complete stage output for ``key``, else the reason."""
    root = Path(root)
    if not root.is_dir():
        return "missing"
    manifest = read_manifest(root)
    if manifest is None:
        return f"no readable {MANIFEST} (interrupted or corrupted run)"
    if manifest.get("key") != key:
        return f"manifest key {manifest.get('key')!r} differs from {key!r}"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "manifest lists no files"
    for rel, meta in files.items():
        p = root / rel
        if not p.is_file():
            return f"file listed in the manifest is missing: {rel}"
        if p.stat().st_size != meta.get("size"):
            return f"size of {rel} changed ({p.stat().st_size} != {meta.get('size')} bytes)"
        if check_hashes and file_sha256(p) != meta.get("sha256"):
            return f"content of {rel} changed (sha256 mismatch)"
    return None


def remove_tree(path: Path) -> None:
    """Remove a stage folder, tolerating a half-deleted one."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=False)
