"""YAML documents with source positions, and problems reported as ``file:line:col: path: message``.

PyYAML's composer keeps the line and column of every node; we walk the node tree once to build plain Python
data plus a map from each data path to its position, so every later check (JSON Schema, semantics) can point
at the exact place in the user's file. Duplicate mapping keys, which PyYAML accepts silently, are problems.
"""

from __future__ import annotations

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


def load(path: str | Path) -> Source:
    """Parse ``path``; a syntax error or a duplicate key raises :class:`InputError`."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(name, 1, 1, "", f"cannot read the file: {exc.strerror}")]) from None
    return parse(text, name)


def parse(text: str, name: str = "<string>") -> Source:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return _raise([Problem(name, line, col, "", f"YAML syntax error: {exc.problem or exc.context}")])
    marks: dict[PathKey, tuple[int, int]] = {}
    key_marks: dict[PathKey, tuple[int, int]] = {}
    problems: list[Problem] = []
    data = _walk(node, (), marks, key_marks, problems, name) if node is not None else None
    if problems:
        _raise(problems)
    return Source(name, data, marks, key_marks)


def _raise(problems: list[Problem]) -> Source:
    raise InputError(problems)


def _walk(node: yaml.Node, path: PathKey, marks: dict[PathKey, tuple[int, int]],
          key_marks: dict[PathKey, tuple[int, int]], problems: list[Problem], name: str) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _scalar(knode)
            if key in out:
                problems.append(Problem(name, knode.start_mark.line + 1, knode.start_mark.column + 1,
                                        dotted((*path, str(key))), "duplicate key"))
                continue
            kpath = (*path, str(key))
            key_marks[kpath] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            out[key] = _walk(vnode, kpath, marks, key_marks, problems, name)
            if isinstance(vnode, yaml.MappingNode | yaml.SequenceNode):
                marks[kpath] = key_marks[kpath]  # a whole object is best pointed at by its key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, (*path, i), marks, key_marks, problems, name) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Construct a scalar the way ``yaml.safe_load`` would (ints, floats, bools, null, strings)."""
    if not isinstance(node, yaml.ScalarNode):
        return str(node.value)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)  # type: ignore[no-untyped-call]
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
