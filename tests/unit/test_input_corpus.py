"""Broken input never gets a traceback: a corpus of known-bad files, and a seeded mutation fuzz of the shipped
topologies, scenarios and comparisons. Every case must end in exit 0 or 1 with ``file:line:col`` problems."""

from __future__ import annotations

import gzip
import random
import re
import shutil
import traceback
from pathlib import Path

import pytest

from multi6lab.cli import main
from multi6lab.topologies import loader
from multi6lab.topologies.yamlsrc import InputError

ROOT = Path(__file__).resolve().parents[2]
FIG1 = (ROOT / "topologies" / "figure1.yaml").read_text()
PROBLEM = re.compile(r"^\S+:\d+:\d+: .+", re.M)


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["validate", str(path)])
    out = capsys.readouterr()
    return rc, out.out + out.err


CORPUS: dict[str, tuple[bytes, str]] = {
    "latin1": (FIG1.replace("description: RFC", "description: \xe9RFC").encode("latin-1"),
               r":5:\d+: not UTF-8 text: byte 0xe9"),
    "gzip": (gzip.compress(FIG1.encode()), r":1:1: this is a gzip-compressed file"),
    "nul": (FIG1.replace("description: RFC", "description: \0RFC").encode(), r":5:\d+: a NUL byte"),
    "ansi": (FIG1.replace("description: RFC", "description: \x1b[31mRFC").encode(),
             r":5:\d+: control character U\+001B"),
    "custom tag": (FIG1.replace("name: figure1", "name: !Ref figure1").encode(), r"name: unknown tag '!Ref'"),
    "python tag": (FIG1.replace("name: figure1", "name: !!python/name:os.system figure1").encode(),
                   r"name: unknown tag 'tag:yaml.org,2002:python/name:os.system'"),
    "huge integer": (FIG1.replace("asn: 64501", "asn: " + "9" * 5000).encode(), r"isps.ispa.asn: the number 9+\.\.\. "),
    "infinite asn": (FIG1.replace("asn: 64501", "asn: 1.0e+400").encode(),
                     r"isps.ispa.asn: '1.0e\+400' is not a finite"),
    "nan bandwidth": (FIG1.replace("bw: 100 ", "bw: .nan ").encode(), r"defaults.link.bw: '.nan' is not a finite"),
    "alias bomb": (("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True))
        + "name: x\n").encode(), r"more than \d+ values"),
    "recursive alias": (b"name: &a [*a]\n", r"a recursive alias"),
    "a list, not a mapping": (b"- 1\n- 2\n", r":1:1: a topology is a YAML mapping"),
    "string for a number": (FIG1.replace("bw: 100 ", "bw: fast ").encode(), r"defaults.link.bw: 'fast' is not of type"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_known_bad_input_is_one_problem_with_its_place(tmp_path: Path, name: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, expected = CORPUS[name]
    f = tmp_path / "t.yaml"
    f.write_bytes(data)
    rc, out = validate(f, capsys)
    assert rc == 1 and re.search(expected, out), out[:2000]
    assert "Traceback" not in out


def test_a_comparison_with_wrong_types_points_at_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "comparisons").mkdir()
    f = tmp_path / "comparisons" / "c.yaml"
    f.write_text("rows:\n  - {approach: nptv6, triggers: [link], topology: 5, site: s, host: h, remote: r}\n"
                 "faults:\n  x: {kind: link_down, duration: 5s}\n")
    rc, out = validate(f, capsys)
    assert rc == 1
    assert re.search(r"c.yaml:2:\d+: rows\[0\]\.topology: 5 is not of type 'string'", out), out
    assert re.search(r"c.yaml:4:\d+: faults\.x\.duration: '5s' is not of type", out), out


def mutate(rng: random.Random, text: str) -> str:
    """One random edit of the kind a hurried user (or a bad merge) makes."""
    lines = text.splitlines(keepends=True)
    i = rng.randrange(len(lines))
    kind = rng.randrange(9)
    if kind == 0:  # delete a line
        del lines[i]
    elif kind == 1:  # duplicate a line (duplicate keys, doubled list items)
        lines.insert(i, lines[i])
    elif kind == 2:  # swap two lines
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:  # re-indent a line
        lines[i] = " " * rng.randrange(0, 7) + lines[i].lstrip(" ")
    elif kind == 4:  # replace a number with something else
        value = rng.choice(["-1", "0", "1e400", ".nan", "99999999999999999999999", "1.5", '"5s"', "[]", "{}", "~"])
        lines[i] = re.sub(r"\b\d+(\.\d+)?\b", value, lines[i], count=1)
    elif kind == 5:  # replace a word with another type or a dangling name
        value = rng.choice(["null", "[a, b]", "{x: 1}", "zz", "''", "true", "3fff::/129", "fd00::1/48"])
        lines[i] = re.sub(r"(:\s*)[^\s,{}\[\]]+", lambda m: m.group(1) + value, lines[i], count=1)
    elif kind == 6:  # truncate the file
        return "".join(lines)[: rng.randrange(len(text))]
    elif kind == 7:  # a stray character
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + rng.choice(["{", "]", ":", "&x ", "*x", "!t ", "\t", "é", "- "]) + lines[i][pos:]
    else:  # drop a key's value
        lines[i] = re.sub(r":\s.*$", ":", lines[i])
    return "".join(lines)


def test_seeded_mutations_of_the_shipped_files_never_raise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """400 mutations (seed 4177); a mutated scenario refers to the shipped topologies as the real one does."""
    for folder in ("topologies", "scenarios"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    files = sorted(p for p in tmp_path.rglob("*.yaml"))
    rng = random.Random(4177)
    failures = []
    for case in range(400):
        target = rng.choice(files)
        original = target.read_text()
        target.write_text(mutate(rng, original))
        try:
            rc, out = validate(target, capsys)
            if rc not in (0, 1) or "Traceback" in out or (rc == 1 and not PROBLEM.search(out)):
                failures.append(f"case {case} ({target.name}): rc {rc}: {out[:300]}")
        except Exception:
            failures.append(f"case {case} ({target.name}):\n{traceback.format_exc()[-1500:]}\n"
                            f"--- mutated file ---\n{target.read_text()[:1500]}")
        finally:
            target.write_text(original)
    assert not failures, f"{len(failures)} of 400 mutations broke validate; first:\n" + failures[0]


def big_topology(hosts: int) -> str:
    """figure1 with ``hosts`` hosts on its fabric, each with its own link (what the checking benchmark loads)."""
    names = [f"h{i}" for i in range(hosts)]
    return FIG1.replace("hosts: [h1]", f"hosts: [{', '.join(names)}]").replace(
        '  - endpoints: ["h1:eth0", "sw:eth1"]\n',
        "".join(f'  - endpoints: ["{h}:eth0", "sw:eth{i + 10}"]\n' for i, h in enumerate(names)))


def test_a_ten_thousand_host_topology_is_checked_and_its_problems_found() -> None:
    """How long it takes is a benchmark (README); here: it loads, and a problem deep in it is still found."""
    assert len(loader.loads(big_topology(10_000), "big.yaml").sites[0].hosts) == 10_000
    broken = big_topology(10_000).replace('["h9999:eth0", "sw:eth10009"]', '["h9999:eth0", "sw:eth10008"]')
    with pytest.raises(InputError, match=r"big.yaml:10035:31: links\[9999\]\.endpoints\[1\]: interface sw:eth10008 "
                                         r"is already used by links\[9998\]"):
        loader.loads(broken, "big.yaml")
