"""YAML documents with source positions, and problems reported as ``file:line:col: path: message``.

PyYAML's composer keeps the line and column of every node; we walk the node tree once to build plain Python
data plus a map from each data path to its position, so every later check (JSON Schema, semantics) can point
at the exact place in the user's file. Duplicate mapping keys, which PyYAML accepts silently, are problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, at a position in it."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"


class InputError(Exception):
    """Raised with every problem found in one input file (never only the first)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def dotted(path: PathKey) -> str:
    """``('links', 3, 'endpoints', 0)`` -> ``links[3].endpoints[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Source:
    """A parsed document and where each of its values stands in the file."""

    file: str
    data: Any
    marks: dict[PathKey, tuple[int, int]]  # where each value starts
    key_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)  # where each mapping key starts

    def where(self, path: PathKey, at_key: bool = False) -> tuple[int, int]:
        """Line and column of ``path`` (its key with ``at_key``), or of its nearest ancestor that has one."""
        p = tuple(path)
        if at_key and p in self.key_marks:
            return self.key_marks[p]
        while p not in self.marks and p:
            p = p[:-1]
        return self.marks.get(p, (1, 1))

    def problem(self, path: PathKey, message: str, at_key: bool = False) -> Problem:
        line, col = self.where(path, at_key)
        return Problem(self.file, line, col, dotted(path), message)


MAX_BYTES = 4 * 1024 * 1024  # no topology, scenario or comparison comes near this
MAX_VALUES = 200_000  # mappings, lists and scalars after aliases are expanded (an alias bomb stops here)
MAX_INT = 2**63  # no field holds a larger number; Python would spend seconds converting thousands of digits
# LibYAML's parser where PyYAML was built with it (about 3x faster on large files), keeping every position.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def load(path: str | Path) -> Source:
    """Read and parse ``path``; anything that is not a sane YAML document raises :class:`InputError`."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:
            raise InputError([Problem(name, 1, 1, "", f"the file is {size} bytes; the limit is {MAX_BYTES} "
                                                       "(is it really a topology or scenario?)")])
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError([Problem(name, 1, 1, "", f"cannot read the file: {exc.strerror}")]) from None
    return parse(decode(raw, name), name)


def decode(raw: bytes, name: str) -> str:
    """UTF-8 text, or a problem at the first byte that is not (binary files say so)."""
    if raw[:2] == b"\x1f\x8b":
        raise InputError([Problem(name, 1, 1, "", "this is a gzip-compressed file, not YAML text")])
    if (nul := raw.find(b"\x00")) >= 0:
        line, col = _position(raw[:nul].decode("utf-8", errors="replace"))
        raise InputError([Problem(name, line, col, "", "a NUL byte: this is a binary file, not YAML text")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(raw[: exc.start].decode("utf-8", errors="replace"))
        raise InputError([Problem(name, line, col, "", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} here "
                                                       "(save the file as UTF-8)")]) from None


def _position(text: str) -> tuple[int, int]:
    """1-based line and column just after ``text``."""
    return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


def parse(text: str, name: str = "<string>") -> Source:
    if len(text) > MAX_BYTES:
        raise InputError([Problem(name, 1, 1, "", f"the document is {len(text)} characters; the limit is {MAX_BYTES}")])
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InputError([Problem(name, line, col, "", f"YAML syntax error: {exc.problem or exc.context}")]) from None
    except yaml.reader.ReaderError as exc:  # a control character: NUL, an ANSI escape, ...
        line, col = _position(text[: exc.position])
        raise InputError([Problem(name, line, col, "", f"control character U+{exc.character:04X} is not allowed "
                                                       "in YAML (remove it)")]) from None
    walker = _Walker(name)
    data = walker.walk(node, ()) if node is not None else None
    if walker.problems:
        raise InputError(walker.problems)
    return Source(name, data, walker.marks, walker.key_marks)


class _Walker:
    """Builds plain data from the composed node tree, with positions; bounded against alias tricks."""

    def __init__(self, name: str):
        self.name = name
        self.marks: dict[PathKey, tuple[int, int]] = {}
        self.key_marks: dict[PathKey, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.values = 0
        self.open: set[int] = set()  # nodes being walked on the current path: an alias back to one recurses
        self.constructor = yaml.constructor.SafeConstructor()  # scalars as yaml.safe_load would make them

    def problem(self, node: yaml.Node, path: PathKey, message: str) -> None:
        self.problems.append(Problem(self.name, node.start_mark.line + 1, node.start_mark.column + 1,
                                     dotted(path), message))

    def walk(self, node: yaml.Node, path: PathKey) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            if self.values == MAX_VALUES + 1:
                self.problem(node, path, f"more than {MAX_VALUES} values (anchors and aliases expanded): "
                                         "the document is too large to check")
            return None
        if id(node) in self.open:
            self.problem(node, path, "this alias refers to a node that contains it (a recursive alias)")
            return None
        if node.tag not in STANDARD_TAGS:
            self.problem(node, path, f"unknown tag '{node.tag}': tags are not supported (remove it)")
            return None
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self.open.add(id(node))
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                key = self.scalar(knode, path) if isinstance(knode, yaml.ScalarNode) else None
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.problem(knode, path, "a mapping key must be a plain word or number")
                    continue
                kpath = (*path, str(key))
                if key in out:
                    self.problem(knode, kpath, "duplicate key")
                    continue
                self.key_marks[kpath] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
                out[key] = self.walk(vnode, kpath)
                if isinstance(vnode, yaml.MappingNode | yaml.SequenceNode):
                    self.marks[kpath] = self.key_marks[kpath]  # a whole object is best pointed at by its key
            self.open.discard(id(node))
            return out
        if isinstance(node, yaml.SequenceNode):
            self.open.add(id(node))
            items = [self.walk(v, (*path, i)) for i, v in enumerate(node.value)]
            self.open.discard(id(node))
            return items
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: PathKey) -> Any:
        """A scalar as ``yaml.safe_load`` would construct it, within sane numeric bounds."""
        if node.tag == "tag:yaml.org,2002:int" and len(str(node.value).lstrip("+-0")) > 19:
            self.problem(node, path, f"the number {str(node.value)[:20]}... is far too large")
            return None
        try:
            value = self.constructor.construct_object(node, deep=True)  # type: ignore[no-untyped-call]
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            self.problem(node, path, f"cannot read this value: {exc}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(node, path, f"{node.value!r} is not a finite number (NaN and infinities are not allowed)")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
            self.problem(node, path, f"the number {value} is far too large")
            return None
        return value
