"""The one YAML loader and the one JSON reader for every file a user can hand us, with bounds.

A 1 KB YAML can hold an "alias bomb" (``a: &a [x, x]``, ``b: &b [*a, *a]``, ... : every level doubles what a walk
over it visits), and a JSON file nested 200,000 levels deep overflows the recursion of any reader. Both are cut
off here: a size limit per file, a limit on the number of YAML aliases, and a JSON nesting limit checked on the
text before it is parsed. A breach is a :class:`~sr.errors.ConfigError` naming the file and the limit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from sr.errors import ConfigError

#: a config, class file, palette or dataset.yaml is a few KB; prepared splits live in their own files
MAX_YAML_BYTES = 8 * 1024 * 1024
#: the project's own configs use no aliases; a user's may use a few
MAX_YAML_ALIASES = 100
#: nodes of the document with every alias expanded (what a walk over it visits): nine levels of nine aliases are
#: only 81 aliases but 9**9 nodes
MAX_YAML_NODES = 1_000_000
#: COCO annotation files of large data sets reach a few hundred MB
MAX_JSON_BYTES = 2 * 1024 * 1024 * 1024
#: COCO nests 4 levels (file, list, annotation, bbox / segmentation polygon list)
MAX_JSON_DEPTH = 64

_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that counts aliases as it composes the document and stops at :data:`MAX_YAML_ALIASES`."""

    def __init__(self, stream, source: str):
        super().__init__(stream)
        self.source = source
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise ConfigError(
                    f"{self.source}: more than {MAX_YAML_ALIASES} YAML aliases (*name); refused as a possible "
                    "alias bomb"
                )
        return super().compose_node(parent, index)

    def compose_document(self):
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def expanded(n) -> int:  # memoised by node: an alias is the same node object, counted in O(1) again
            if id(n) not in sizes:
                sizes[id(n)] = 0  # a recursive alias (&a [*a]) counts as one node while it is being measured
                children = (
                    [c for pair in n.value for c in pair]
                    if isinstance(n, yaml.MappingNode)
                    else n.value
                    if isinstance(n, yaml.SequenceNode)
                    else []
                )
                sizes[id(n)] = 1 + sum(expanded(c) for c in children)
            return sizes[id(n)]

        if node is not None and expanded(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"{self.source}: the YAML expands to {expanded(node)} nodes through its aliases, over the limit of "
                f"{MAX_YAML_NODES}; refused as an alias bomb"
            )
        return node


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text`` (from ``source``, named in errors) safely and within the bounds of this module."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: {len(text)} characters of YAML, over the limit of {MAX_YAML_BYTES}")
    loader = _BoundedLoader(text, source)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:  # one line: where and what (the full text quotes the file over several lines)
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deep to read") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike) -> Any:
    """The YAML document of ``path`` (any top-level type), bounded; a missing file is a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"file not found: {path}")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes of YAML, over the limit of {MAX_YAML_BYTES}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return load_yaml(text, str(path))


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def read_json_file(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The JSON document of ``path`` within :data:`MAX_JSON_BYTES` and :data:`MAX_JSON_DEPTH`; a breach or a
    syntax error is a ConfigError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ConfigError(f"{path}: {what} of {size} bytes, over the limit of {MAX_JSON_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise ConfigError(f"{path}: {what} nested {depth} levels deep, over the limit of {MAX_JSON_DEPTH}")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from None
