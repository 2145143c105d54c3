"""README.md as runnable blocks: fenced `bash` / `python` code, its `readme-test` marker, its output.

Markers are HTML comments on the line right before a fence (invisible on GitHub):

- `<!-- readme-test: skip: REASON -->`   the block cannot run in the test (it says why);
- `<!-- readme-test: slow: REASON -->`   it runs only in the `slow` selection;
- `<!-- readme-test: output -->`         this (`text`) block is the expected stdout of the code block above:
  compared line by line, with `…` matching any run of characters and trailing spaces ignored.

Bash blocks are cut into commands where `bash -n` accepts the lines so far (so quoted strings and `\\`
continuations spanning lines stay one command).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*readme-test:\s*(skip|slow|output)\s*(?::\s*(.*?))?\s*-->\s*$")
RUNNABLE = {"bash", "sh", "shell", "console", "python", "py"}


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None  # skip | slow | None
    reason: str = ""
    expected: str | None = None  # the `output` block that follows, if any
    heading: str = ""

    @property
    def name(self) -> str:
        return f"README.md:{self.line} {self.lang}"

    @property
    def is_python(self) -> bool:
        return self.lang in ("python", "py")


@dataclass
class _Pending:
    marker: str | None = None
    reason: str = ""
    extra: dict = field(default_factory=dict)


def parse(path: Path) -> list[Block]:
    """The runnable blocks of a Markdown file, in order, with markers and expected outputs attached."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[str, str] | None = None
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        m = MARKER.match(line)
        if m:
            pending = (m.group(1), m.group(2) or "")
            i += 1
            continue
        f = FENCE.match(line)
        if not f:
            if line.strip():
                pending = None  # a marker applies only to the fence right after it
            i += 1
            continue
        start, lang = i, f.group(1).lower()
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        code = "\n".join(body) + "\n"
        kind, reason = pending if pending else (None, "")
        pending = None
        if kind == "output":
            runnable = [b for b in blocks if b.lang in RUNNABLE]
            if not runnable:
                raise ValueError(f"README.md:{start + 1}: an output block with no code block before it")
            runnable[-1].expected = code
            continue
        if lang in RUNNABLE:
            blocks.append(Block(start + 1, lang, code, kind, reason, heading=heading))
    return blocks


def bash_commands(code: str) -> list[tuple[int, str]]:
    """(offset of its first line in the block, command) for each complete shell command of a block."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    first = 0
    for n, line in enumerate(code.splitlines()):
        if not buf:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            first = n
        buf.append(line)
        text = "\n".join(buf)
        if text.rstrip().endswith("\\"):
            continue
        if subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0:
            out.append((first, text))
            buf = []
    if buf:
        raise ValueError(f"unterminated shell command: {' '.join(buf)[:200]}")
    return out


def matches(expected: str, actual: str) -> str | None:
    """None when `actual` fits `expected` line by line (`…` = any characters), else what differs."""
    exp = [line.rstrip() for line in expected.rstrip("\n").splitlines()]
    act = [line.rstrip() for line in actual.rstrip("\n").splitlines()]
    if len(exp) != len(act):
        return (
            f"{len(act)} lines printed, {len(exp)} documented:\n--- documented\n{expected}"
            f"--- printed\n{actual}"
        )
    for n, (e, a) in enumerate(zip(exp, act), 1):
        pattern = "^" + ".*".join(re.escape(part) for part in e.split("…")) + "$"
        if not re.match(pattern, a):
            return f"line {n} differs:\n  documented: {e}\n  printed:    {a}"
    return None
