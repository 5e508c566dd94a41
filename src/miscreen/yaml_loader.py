"""A YAML reader with limits, so a hostile or broken file costs neither time nor memory.

A file is at most ``MAX_CONFIG_BYTES`` bytes of UTF-8; a document at most ``MAX_ALIASES``
alias uses, ``MAX_NODES`` values once aliases are expanded and ``MAX_DEPTH`` levels of
nesting, with no recursive anchors; all is checked before anything is constructed. Error
messages (:class:`~miscreen.errors.ConfigError`) show short excerpts, never a whole value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from miscreen.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_NODES = 20_000
MAX_DEPTH = 50


def read_yaml_file(path: Path) -> Any:
    """The one YAML document in ``path``; ``ConfigError`` naming the file when it is
    missing, a folder, too big, not UTF-8 or not YAML within the limits."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {what}")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: {size:,} bytes; a config is at most {MAX_CONFIG_BYTES:,} bytes of YAML"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return safe_yaml(text, str(path))


class _LimitedLoader(yaml.SafeLoader):
    """The safe loader, stopping at ``MAX_DEPTH`` levels of nesting while it scans (deeply
    nested flow collections otherwise cost the scanner time growing with the square)."""

    def fetch_more_tokens(self) -> None:
        if self.flow_level > MAX_DEPTH or len(self.indents) > MAX_DEPTH:
            raise _TooDeep
        super().fetch_more_tokens()


class _TooDeep(Exception):
    pass


def safe_yaml(text: str, where: str = "<config>") -> Any:
    """Parse one YAML document with the safe loader, refusing documents whose aliases
    expand beyond the budget (``MAX_ALIASES`` uses, ``MAX_NODES`` values), recursive
    anchors and nesting deeper than ``MAX_DEPTH``, before anything is constructed."""
    loader = None
    try:
        loader = _LimitedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {shorten(str(exc), 500)}") from None
    except (RecursionError, _TooDeep):
        raise ConfigError(f"{where}: YAML nested too deeply (limit {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Count the values of the document with every alias expanded, without expanding it."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    aliases = 0

    def size(node: yaml.Node, depth: int) -> int:
        nonlocal aliases
        key = id(node)
        if key in active:
            raise ConfigError(f"{where}: a YAML alias refers to the value that contains it")
        if key in sizes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(f"{where}: more than {MAX_ALIASES} YAML alias uses (*name)")
            return sizes[key]
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: YAML nested too deeply (limit {MAX_DEPTH} levels)")
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise ConfigError(
                    f"{where}: the YAML expands to more than {MAX_NODES:,} values "
                    f"(aliases repeat their anchor's whole value); write the config out plainly"
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...`` when cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
