"""On-disk stage cache: a stage's outputs live in a folder named by a hash of its config and inputs.

The key of a stage is ``sha256(stage name, its config, the keys of the stages it reads, code version)``,
so keys chain: changing only the optimisation recipe changes the keys of the optimise stage and those
after it, while data, features and the float model keep theirs and are read back instead of recomputed.
Folders are built in a temporary sibling and renamed into place (``tinyopt._io.atomic_dir``): a killed
run leaves either a complete entry or none.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from tinyopt._io import atomic_dir, atomic_write_text
from tinyopt._json import plain_or_str

CACHE_VERSION = "1"
META = "meta.json"


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stage_key(stage: str, config, inputs: list[str] | tuple[str, ...] = ()) -> str:
    """Hex key (16 chars) of a stage from its name, JSON-able config and upstream keys."""
    h = hashlib.sha256(_canon({"v": CACHE_VERSION, "stage": stage, "config": config,
                               "inputs": list(inputs)}).encode())
    return h.hexdigest()[:16]


def fingerprint_path(path: str | os.PathLike, pattern: str = "*") -> str:
    """A cheap content fingerprint of a file or folder: names, sizes and modification times, hashed.

    Used in data-stage keys so that edits to the dataset invalidate the cache.
    """
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(q for q in p.rglob(pattern) if q.is_file()) if p.is_dir() else []
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(p) if f != p else f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class StageCache:
    """``cached(stage, key, build)`` returns the entry folder, building it only when absent."""

    def __init__(self, root: str | os.PathLike, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled
        self.hits: list[str] = []
        self.misses: list[str] = []

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key}"

    def has(self, stage: str, key: str) -> bool:
        return self.enabled and (self.path(stage, key) / META).is_file()

    def cached(self, stage: str, key: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
        """Run ``build(tmp_folder) -> meta`` unless the entry exists; return (folder, meta)."""
        dest = self.path(stage, key)
        if self.has(stage, key):
            self.hits.append(stage)
            return dest, json.loads((dest / META).read_text())
        self.misses.append(stage)
        with atomic_dir(dest) as tmp:
            meta = build(tmp)
            atomic_write_text(tmp / META, json.dumps(meta, indent=1, sort_keys=True, default=plain_or_str))
        return dest, json.loads((dest / META).read_text())
