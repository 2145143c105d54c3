"""README.md, executed: every bash and Python block runs against a real server; stated outputs are checked.

One `phishlens serve` process (the real CLI, uvicorn on a free port, the shipped SmolLM2 bundles) serves the
whole module; `localhost:8000` / `127.0.0.1:8000` in a block become its address, `PHISHLENS_URL` points the
CLI at it, and `clf-…` in a command becomes the request id the README printed last. Blocks run in README
order in a scratch folder holding links to `adapters/`, `configs/`, `deploy/` and `docs/examples/` (so
`--out docs/eval` never overwrites the committed results); Python blocks share one namespace, like a doctest.

The server uses the HF backend: the vLLM engine adds minutes of start-up on 2 cores, and vLLM-vs-HF parity
(≤ 1e-4) is tested in tests/e2e/test_parity.py. Markers (`readme-test: skip|slow|output`) are described in
tests/e2e/readme_blocks.py. A failure names the README line, the command and what it printed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.readme_blocks import Block, bash_commands, matches, parse

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BLOCKS = parse(README)
DOCS_URL = re.compile(r"(?:http://)?(?:localhost|127\.0\.0\.1):8000\b")
REQUEST_ID = re.compile(r"clf-[A-Za-z0-9_\-]{8,}")
ADAPTERS = ["default", "specialist-sms", "specialist-url", "specialist-email"]
COMMAND_TIMEOUT_S = 1800.0
STARTUP_TIMEOUT_S = 600.0


@dataclass
class Readme:
    url: str
    env: dict[str, str]
    cwd: Path
    log: Path
    namespace: dict[str, Any] = field(default_factory=dict)
    last_id: str | None = None

    def docs_to_live(self, text: str) -> str:
        return DOCS_URL.sub(
            lambda m: self.url if m.group(0).startswith("http") else self.url[len("http://") :], text
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def readme(tmp_path_factory, smollm2_base) -> Readme:
    cwd = tmp_path_factory.mktemp("readme")
    for name in ("adapters", "configs", "deploy"):
        (cwd / name).symlink_to(REPO / name)
    (cwd / "docs").mkdir()
    (cwd / "docs" / "examples").symlink_to(REPO / "docs" / "examples")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PHISHLENS_URL": url,
        "PHISHLENS_PORT": str(port),
        "PHISHLENS_HOST": "127.0.0.1",
        "PHISHLENS_BACKEND": "hf",
        "PHISHLENS_ADAPTERS": ",".join(ADAPTERS),
        "PHISHLENS_DEFAULT_ADAPTER": "default",
        "PHISHLENS_ROUTES": "sms=specialist-sms,url=specialist-url",  # README "Style routing"
        "PHISHLENS_DRIFT_STATE_DIR": str(cwd / "drift-state"),
        "NO_COLOR": "1",
    }
    for key in ("PHISHLENS_API_KEY", "PHISHLENS_API_KEYS", "PHISHLENS_ADMIN_KEYS", "PHISHLENS_ADAPTER_ROOTS"):
        env.pop(key, None)
    log = cwd / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(bin_dir) / "phishlens"), "serve"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, proc, log)
        yield Readme(url, env, cwd, log)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    from phishlens.clients import PhishlensClient
    from phishlens.clients.protocol.errors import PhishlensError

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with PhishlensClient(url, timeout=30.0, max_retries=0) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"`phishlens serve` exited with {proc.returncode} during start-up:\n{_tail(log)}")
            try:
                if c.ready():
                    return
            except PhishlensError:
                pass  # not listening yet
            time.sleep(1.0)
    pytest.fail(f"`phishlens serve` not ready after {STARTUP_TIMEOUT_S:g}s:\n{_tail(log)}")


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def _needs_data(block: Block) -> None:
    if re.search(r"phishlens (evaluate|diagnose|train|augment)\b", block.code):
        from tests.conftest import skip_without_data

        skip_without_data()


# ---- running blocks -------------------------------------------------------------------------------


# Commands that rebuild the shipped adapters' mixes (the TF-IDF peers, training rows, thresholds)
_BUILDS_MIXES = re.compile(r"phishlens (evaluate|train|augment|calibrate)\b")


@functools.cache
def _unfetched_default_corpora() -> tuple[str, ...]:
    """How to fetch the training-only corpora of the shipped default's mix that are not here."""
    from phishlens.training.contract.bundle import read_manifest
    from phishlens.training.data.corpora import unfetched_sources
    from phishlens.training.data.mixes import load_mix

    mix = read_manifest(REPO / "adapters" / "default").training_data.mix
    return tuple(unfetched_sources(load_mix(mix).sources).values())


def run_bash(block: Block, rd: Readme) -> str:
    printed = []
    for offset, command in bash_commands(block.code):
        where = f"README.md:{block.line + 1 + offset} (section {block.heading!r})"
        if _BUILDS_MIXES.match(command) and _unfetched_default_corpora():
            pytest.skip(f"{where}: the default's mix needs {'; '.join(_unfetched_default_corpora())}")
        live = rd.docs_to_live(command)
        if "clf-…" in live:
            assert rd.last_id, f"{where}: `clf-…` is used before any README command printed a request id"
            live = live.replace("clf-…", rd.last_id)
        try:
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", live],
                cwd=rd.cwd,
                env=rd.env,
                text=True,
                capture_output=True,
                timeout=COMMAND_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{where}: `{command}` ran past {COMMAND_TIMEOUT_S:g}s")
        assert done.returncode == 0, (
            f"{where}: `{command}` exited {done.returncode}\n--- stderr\n{done.stderr[-3000:]}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- server log\n{_tail(rd.log, 15)}"
        )
        ids = REQUEST_ID.findall(done.stdout)
        rd.last_id = ids[-1] if ids else rd.last_id
        printed.append(done.stdout)
        CHECKS_BY_COMMAND.get(_command_key(command), lambda *a: None)(command, done.stdout, rd)
    return "".join(printed)


def run_python(block: Block, rd: Readme) -> str:
    out = io.StringIO()
    code = compile(rd.docs_to_live(block.code), f"README.md:{block.line + 1}", "exec")
    cwd = os.getcwd()
    try:
        os.chdir(rd.cwd)
        with contextlib.redirect_stdout(out):
            exec(code, rd.namespace)
    except Exception:
        pytest.fail(f"{block.name} (section {block.heading!r}) raised:\n{traceback.format_exc(limit=6)}")
    finally:
        os.chdir(cwd)
    ids = REQUEST_ID.findall(out.getvalue())
    rd.last_id = ids[-1] if ids else rd.last_id
    return out.getvalue()


# ---- documented outputs stated in prose or tables, not in an output block -------------------------


def _command_key(command: str) -> str | None:
    if re.search(r"curl\b.*?/v1/classify", command) and "Your mailbox is full" in command:
        return "curl classify"  # the set-up example, whose answer the README spells out
    if re.search(r"curl\b.*?/v1/explain", command, re.S):
        return "curl explain"
    if re.match(r"phishlens explain\b", command):
        return "cli explain"
    if re.match(r"phishlens evaluate\b", command):
        return "evaluate"
    return None


def documented_classify_answer() -> dict[str, Any]:
    """The set-up example's answer as the README spells it (inline after the curl block), so that a retrained
    default is documented in one place: the README, not the README and this test."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r'`(\{"id":"clf-…","object":"classification".*?)`', text)
    assert m, 'README: the curl set-up example\'s answer (`{"id":"clf-…", …}`) is not spelled out'
    shown = m.group(1)

    def field_(pattern: str) -> str:
        found = re.search(pattern, shown)
        assert found, f"README: the set-up answer does not show {pattern!r}: {shown}"
        return found.group(1)

    return {
        "label": field_(r'"label":"(\w+)"'),
        "phishing": float(field_(r'"phishing":([0-9.]+)')),
        "legitimate": float(field_(r'"legitimate":([0-9.]+)')),
        "score": float(field_(r'"score":([0-9.]+)')),
        "uncertain": field_(r'"uncertain":(true|false)') == "true",
        "truncated": field_(r'"truncated":(true|false)') == "true",
        "usage": json.loads(field_(r'"usage":(\{[^}]*\})')),
    }


def check_curl_classify(command: str, stdout: str, rd: Readme) -> None:
    """Set-up: the documented answer of the shipped default adapter (fields, values to the digits shown)."""
    from phishlens.training.contract.bundle import content_sha256

    shown = documented_classify_answer()
    body = json.loads(stdout)
    where = f"README `{command[:60]}…`"
    assert body["id"].startswith("clf-") and body["object"] == "classification", where
    r = body["data"][0]
    assert {"index", "label", "probs", "score", "uncertain", "truncated", "adapter"} <= set(r), (where, r)
    got = (r["index"], r["label"], r["uncertain"], r["truncated"])
    assert got == (0, shown["label"], shown["uncertain"], shown["truncated"]), (where, r, shown)
    answered = (round(r["score"], 4), round(r["probs"]["phishing"], 4), round(r["probs"]["legitimate"], 4))
    assert answered == (shown["score"], shown["phishing"], shown["legitimate"]), (
        f"{where}: README shows score {shown['score']} (phishing {shown['phishing']}, legitimate "
        f"{shown['legitimate']}), the server answered {r['score']} ({r['probs']})"
    )
    assert r["adapter"] == {"name": "default", "sha256": content_sha256(REPO / "adapters" / "default")}, where
    assert body["usage"] == shown["usage"], (where, body["usage"], shown["usage"])


def check_curl_explain(command: str, stdout: str, rd: Readme) -> None:
    body = json.loads(stdout)
    assert body["additivity_error"] <= 1e-4 and body["evaluations"] <= 300, body
    assert "".join(body["tokens"]) == body["masked_text"] and len(body["attributions"]) == len(body["tokens"])
    assert body["html"].startswith("<!DOCTYPE html>")


def check_cli_explain(command: str, stdout: str, rd: Readme) -> None:
    if "--html why.html" in command:
        assert (rd.cwd / "why.html").read_text().startswith("<!DOCTYPE html>")
    assert "towards phishing:" in stdout and "additivity error:" in stdout, stdout


def _md_table(lines: list[str]) -> dict[str, dict[str, str]]:
    """{row name: {column: cell}} of the first Markdown table in `lines` whose first header is `model`."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in lines:
        if not line.startswith("|"):
            if header is not None:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            if cells[0] == "model":
                header = cells
            continue
        if set(cells[0]) <= {"-", ":"}:
            continue
        rows[re.sub(r"\s*\[.*\]$", "", cells[0])] = dict(zip(header[1:], cells[1:]))
    return rows


def check_evaluate(command: str, stdout: str, rd: Readme) -> None:
    """Results: the printed matrix equals the README's cross-domain table on every shared row and column."""
    text = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("### Cross-domain matrix"))
    documented = _md_table(text[start:])
    printed = _md_table(stdout.splitlines())
    shared = [m for m in printed if m in documented and m != "n (pos/neg)"]
    assert {"default", "specialist-sms", "specialist-url", "specialist-email"} <= set(shared), (
        f"`{command}` printed rows {sorted(printed)}; the README table has {sorted(documented)}"
    )
    diffs = [
        f"{m} / {col}: README {documented[m][col]}, command {cell}"
        for m in shared
        for col, cell in printed[m].items()
        if col in documented[m] and documented[m][col] != cell
    ]
    assert not diffs, (
        f"`{command}` does not reproduce the README's cross-domain matrix (regenerate the "
        "table from this command's output, or fix the code):\n" + "\n".join(diffs)
    )


CHECKS_BY_COMMAND = {
    "curl classify": check_curl_classify,
    "curl explain": check_curl_explain,
    "cli explain": check_cli_explain,
    "evaluate": check_evaluate,
}


# ---- the tests -------------------------------------------------------------------------------------


def _param(block: Block) -> Any:
    marks = [pytest.mark.slow] if block.marker == "slow" else []
    return pytest.param(block, id=block.name, marks=marks)


def _slow_selected(config: Any) -> bool:
    """Slow blocks run only when asked for (`-m slow` or PHISHLENS_README_SLOW=1): the default `make test`
    selects every marker, and the re-scoring evaluate alone takes longer than the rest of the suite."""
    expr = config.getoption("markexpr") or ""
    return os.environ.get("PHISHLENS_README_SLOW") == "1" or ("slow" in expr and "not slow" not in expr)


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_readme_block(block: Block, request) -> None:
    if block.marker == "skip":
        pytest.skip(f"{block.name}: {block.reason}")
    if block.marker == "slow" and not _slow_selected(request.config):
        pytest.skip(f"{block.name}: slow, {block.reason}; run it with -m slow or PHISHLENS_README_SLOW=1")
    _needs_data(block)
    rd = request.getfixturevalue("readme")
    out = run_python(block, rd) if block.is_python else run_bash(block, rd)
    if block.expected is not None:
        diff = matches(block.expected, out)
        where = f"{block.name} (section {block.heading!r})"
        assert diff is None, f"{where}: output differs from the README:\n{diff}"


def test_every_block_is_run_or_says_why() -> None:
    assert len(BLOCKS) >= 10, "README.md lost its code blocks (or the parser broke)"
    silent = [b.name for b in BLOCKS if b.marker in ("skip", "slow") and not b.reason]
    assert not silent, f"skip/slow markers need a reason: {silent}"


def test_adapter_listing_carries_the_manifests(readme) -> None:
    """API tour: `GET /v1/adapters` has each bundle's calibration and the metrics of its manifest."""
    from phishlens.clients import PhishlensClient
    from phishlens.training.contract.bundle import read_manifest

    with PhishlensClient(readme.url) as c:
        listed = {a.name: a for a in c.list_adapters()}
    assert sorted(listed) == sorted(ADAPTERS)
    for name, info in listed.items():
        m = read_manifest(REPO / "adapters" / name)
        assert info.metrics == json.loads(json.dumps(m.metrics)), name
        assert info.metrics["test"] and info.metrics["unseen"] is not None, name
        cal = info.calibration
        assert cal is not None and (cal.threshold, cal.uncertain_low, cal.uncertain_high) == (
            m.calibration.threshold,
            m.calibration.uncertain_low,
            m.calibration.uncertain_high,
        ), name
