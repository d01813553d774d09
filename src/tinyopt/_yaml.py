"""YAML from untrusted files: safe loader, no custom tags, bounded size, depth and aliases."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tinyopt.errors import ConfigError

MAX_BYTES = 4 << 20
MAX_DEPTH = 64
MAX_ALIASES = 64


def _check_events(text: str, path: str) -> None:
    depth = aliases = 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(ev, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(f"more than {MAX_ALIASES} YAML aliases", path=path,
                                  fix="write the values out instead of using anchors")
        elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"YAML nested deeper than {MAX_DEPTH} levels", path=path,
                                  fix="flatten the document")
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        tag = getattr(ev, "tag", None)
        if tag and not tag.startswith("tag:yaml.org,2002:") and tag != "!":
            line = ev.start_mark.line + 1
            raise ConfigError(f"line {line}: YAML tag '{tag}' is not allowed", path=path,
                              fix="remove the tag; tinyopt reads plain YAML only and never executes tags")


def load_yaml_text(text: str, path: str = "<string>"):
    if len(text) > MAX_BYTES:
        raise ConfigError(f"YAML larger than {MAX_BYTES} bytes", path=path, fix="use a smaller file")
    try:
        _check_events(text, path)
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"not valid YAML: {problem}", path=path, where=where,
                          fix="correct the YAML syntax at that position") from None


def load_yaml_file(path: str | os.PathLike, expect_mapping: bool = True):
    p = Path(path)
    if not p.is_file():
        raise ConfigError("file not found", path=path, fix="check the path")
    raw = p.read_bytes()
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"YAML larger than {MAX_BYTES} bytes", path=path, fix="use a smaller file")
    if b"\x00" in raw:
        raise ConfigError("contains NUL bytes; not a text file", path=path, fix="give a YAML text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", path=path,
                          fix="save the file as UTF-8") from None
    data = load_yaml_text(text, str(path))
    if expect_mapping and not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ConfigError(f"the YAML document is {kind}, not a mapping", path=path,
                          fix="write 'key: value' pairs at the top level")
    return data
