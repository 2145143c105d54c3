"""Process and engine faults against real servers (HF backend on the tiny Llama, trained tiny bundles).

- a corrupt drift state file and a corrupt bundle at start-up: a clear log line each, the server starts
  with the rest;
- a full disk while the drift state is written: logged, the last good state stays, serving continues;
- the engine failing mid-request: 424 with a clear error, /ready 503, and after `engine_dead_after_s`
  the watchdog stops the server with exit status 3 (mocked faults: a healthy engine cannot be made to fail);
- `phishlens serve` as a real process: drift state survives `kill -9`; SIGTERM lets in-flight requests
  finish (none lost), refuses new connections and exits cleanly within the grace period.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import free_port, serve

PHISH, LEGIT = "zebra-phish", "zebra-legit"


def settings_for(tiny_llama, root: Path, state: Path, **kw):
    from phishlens.server.settings import Settings

    base = {
        "backend": "hf",
        "base_model": str(tiny_llama.path),
        "adapter_roots": [root],
        "adapters": [PHISH, LEGIT],
        "default_adapter": PHISH,
        "explain_warmup": False,
        "max_model_len": 512,
        "drift_state_dir": state,
        "drift_eval_every": 5,
    }
    base.update(kw)
    return Settings(**base)


def test_corrupt_state_file_and_corrupt_bundle_start_with_the_rest(tiny_llama, tiny_bundles, tmp_path):
    src, _, _ = tiny_bundles
    root = tmp_path / "adapters"
    shutil.copytree(src, root)
    shutil.copytree(root / LEGIT, root / "broken")
    (root / "broken" / "adapter_model.safetensors").write_bytes(b"\xff" * 64)  # corrupt weights
    state = tmp_path / "state"
    state.mkdir()
    (state / f"{PHISH}.safetensors").write_bytes(b"not a safetensors file at all")
    settings = settings_for(tiny_llama, root, state, adapters=[PHISH, "broken", LEGIT])
    with serve(settings) as live, live.http() as c:
        ready = c.get("/ready").json()
        assert sorted(ready["adapters"]) == [LEGIT, PHISH]
        assert c.post("/v1/classify", json={"input": "zebra lunch"}).status_code == 200
        assert c.get("/v1/drift").status_code == 200  # reads (and discards) the corrupt state
        logs = live.logs.text()
    assert "adapter broken not loaded at start-up" in logs and "not a readable safetensors file" in logs
    assert f"drift state for {PHISH} unreadable" in logs


def test_full_disk_while_writing_state_is_logged_and_serving_continues(
    tiny_llama, tiny_bundles, tmp_path, monkeypatch
):
    root, _, _ = tiny_bundles
    state = tmp_path / "state"
    with serve(settings_for(tiny_llama, root, state)) as live, live.http() as c:
        for i in range(6):
            assert (
                c.post("/v1/classify", json={"input": [f"zebra text {i}", f"lunch {i}"]}).status_code == 200
            )
        monitor = live.app.state.runtime.drift
        _wait(lambda: {d.adapter: d.texts_seen for d in monitor.report()}.get(PHISH, 0) >= 12)
        monitor.persist()  # a good state on disk
        good = (state / f"{PHISH}.safetensors").read_bytes()
        real_write = os.write

        def full_disk(
            fd, data
        ):  # ENOSPC for state files only (a full disk cannot be made without root mounts)
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(state)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", full_disk)
        for i in range(3):
            assert c.post("/v1/classify", json={"input": f"zebra after {i}"}).status_code == 200
        monitor.persist()
        assert c.post("/v1/classify", json={"input": "still serving"}).status_code == 200
        monkeypatch.undo()
        assert (state / f"{PHISH}.safetensors").read_bytes() == good  # the last good state is intact
        assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers
        logs = live.logs.text()
    assert "cannot persist drift state" in logs and "No space left on device" in logs


def test_engine_failure_is_424_then_ready_503_then_exit_3(tiny_llama, tiny_bundles, tmp_path, monkeypatch):
    from phishlens.server.backends.base import BackendError
    from phishlens.server.watchdog import ENGINE_DEAD_EXIT

    root, _, _ = tiny_bundles
    settings = settings_for(
        tiny_llama, root, tmp_path / "state", engine_check_s=0.2, engine_dead_after_s=1.5, drift_enabled=False
    )
    with serve(settings) as live, live.http() as c:
        backend = live.app.state.runtime.backend

        async def failing_score(*_a, **_k):
            raise BackendError("worker process died")

        async def unhealthy():
            return False

        monkeypatch.setattr(backend, "score", failing_score)
        r = c.post("/v1/classify", json={"input": "zebra"})
        assert r.status_code == 424 and r.json()["error"]["type"] == "backend_failure"
        assert "inference engine failed" in r.json()["error"]["message"]
        monkeypatch.setattr(backend, "healthy", unhealthy)
        r = c.get("/ready")
        assert r.status_code == 503 and "not healthy" in r.json()["error"]["message"]
        live.thread.join(30)  # the watchdog stops the server
        assert not live.thread.is_alive()
        assert live.app.state.exit_code == ENGINE_DEAD_EXIT
    assert "inference engine unhealthy for" in live.logs.text()


# --- the real process: kill -9 and SIGTERM ---------------------------------------------------------------
def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    fh = open(log, "ab")  # noqa: SIM115 - the child writes it until it exits
    return subprocess.Popen([sys.executable, "-m", "phishlens.server.main"], env=env, stdout=fh, stderr=fh)


def _wait(cond, timeout: float = 300.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (httpx.TransportError, IndexError):
            pass
        time.sleep(every)
    raise AssertionError("condition not met in time")


def process_env(tiny_llama, root: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of a `phishlens.server.main` process serving the tiny bundles (HF backend)."""
    return {
        **os.environ,
        "PHISHLENS_BACKEND": "hf",
        "PHISHLENS_BASE_MODEL": str(tiny_llama.path),
        "PHISHLENS_ADAPTER_ROOTS": str(root),
        "PHISHLENS_ADAPTERS": f"{PHISH},{LEGIT}",
        "PHISHLENS_DEFAULT_ADAPTER": PHISH,
        "PHISHLENS_PORT": str(port),
        "PHISHLENS_EXPLAIN_WARMUP": "false",
        "PHISHLENS_MAX_MODEL_LEN": "512",
        **settings,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }


@pytest.mark.slow
def test_drift_state_survives_kill_9_and_sigterm_drains(tiny_llama, tiny_bundles, tmp_path):
    root, _, _ = tiny_bundles
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = process_env(
        tiny_llama,
        root,
        port,
        PHISHLENS_DRIFT_STATE_DIR=str(tmp_path / "state"),
        PHISHLENS_DRIFT_PERSIST_S="0.5",
        PHISHLENS_DRIFT_EVAL_EVERY="5",
        PHISHLENS_SHUTDOWN_GRACE_S="60",
        PHISHLENS_MAX_QUEUE="1024",
    )
    log = tmp_path / "server.log"
    proc = _start(env, log)
    try:
        _wait(lambda: httpx.get(url + "/ready", timeout=5).status_code == 200)
        with httpx.Client(base_url=url, timeout=120) as c:
            for i in range(10):
                assert (
                    c.post("/v1/classify", json={"input": [f"zebra a{i}", f"lunch b{i}"]}).status_code == 200
                )
            _wait(lambda: _seen(c, PHISH) >= 20)
            seen = _seen(c, PHISH)
        time.sleep(1.5)  # past one persist period
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        proc = _start(env, log)
        _wait(lambda: httpx.get(url + "/ready", timeout=5).status_code == 200)
        with httpx.Client(base_url=url, timeout=120) as c:
            assert _seen(c, PHISH) >= seen  # the window came back from disk
        # SIGTERM the moment requests are in flight: every request the server had taken in is answered
        # in full; the rest (not yet connected) are refused, never cut; the process exits 0; the port closes
        texts = [f"zebra lunch meeting {i} " * 20 for i in range(64)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_post_classify, url, texts) for _ in range(8)]
            _wait(lambda: _inflight(url) > 0, timeout=120, every=0.005)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            answers = [f.result() for f in futures]
        served = [a for a in answers if isinstance(a, httpx.Response)]
        assert served, "no request was in flight at SIGTERM"
        assert all(a.status_code == 200 and len(a.json()["data"]) == 64 for a in served), [
            a.status_code for a in served
        ]
        refused = [a for a in answers if not isinstance(a, httpx.Response)]
        assert all(isinstance(e, (httpx.ConnectError, httpx.RemoteProtocolError)) for e in refused), refused
        # uvicorn re-raises the caught SIGTERM after its graceful shutdown:
        # "killed by SIGTERM" (or 0) is clean
        assert proc.wait(90) in (0, -signal.SIGTERM) and time.monotonic() - t0 < 60
        assert "Application shutdown complete" in log.read_text()  # the lifespan ran: drift state persisted
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health", timeout=5)
        print(f"SIGTERM: {len(served)} in-flight requests answered in full, {len(refused)} refused")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _post_classify(url: str, texts: list[str]) -> httpx.Response | httpx.HTTPError:
    try:
        return httpx.post(url + "/v1/classify", json={"input": texts}, timeout=300)
    except httpx.HTTPError as e:
        return e


def _inflight(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("phishlens_inflight_texts "):
            return float(line.split()[1])
    return 0.0


def _seen(c: httpx.Client, adapter: str) -> int:
    rows = {d["adapter"]: d for d in c.get("/v1/drift").json()["data"]}
    return int(rows[adapter]["texts_seen"])


@pytest.mark.slow
def test_feedback_survives_kill_9_and_a_damaged_journal_is_logged(tiny_llama, tiny_bundles, tmp_path):
    """Feedback labels answered before a `kill -9` (sent while others are in flight) are all counted after
    the restart, and their duplicates are still recognised; a journal cut mid-line and holding garbage
    costs only those lines: one clear log line, the server starts with the rest."""
    root, _, _ = tiny_bundles
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "feedback"
    env = process_env(
        tiny_llama,
        root,
        port,
        PHISHLENS_DRIFT_ENABLED="false",
        PHISHLENS_FEEDBACK_STATE_DIR=str(state),
        PHISHLENS_FEEDBACK_SECRETS="fleet-secret",
    )
    log = tmp_path / "server.log"
    proc = _start(env, log)
    try:
        _wait(lambda: httpx.get(url + "/ready", timeout=5).status_code == 200)
        with httpx.Client(base_url=url, timeout=60) as c:
            ids = [
                c.post("/v1/classify", json={"input": [f"zebra a{i}", f"lunch b{i}"]}).json()["id"]
                for i in range(200)
            ]
        labels = [{"index": 0, "label": "phishing"}, {"index": 1, "label": "legitimate"}]
        answered: list[str] = []

        def send(rid: str) -> None:
            try:
                r = httpx.post(url + "/v1/feedback", json={"request_id": rid, "labels": labels}, timeout=30)
            except httpx.HTTPError:
                return  # cut by the kill: never answered, so it may or may not count
            assert r.status_code == 200 and r.json()["recorded"] == 2, r.text
            answered.append(rid)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, rid) for rid in ids]
            _wait(lambda: len(answered) >= 20, timeout=120, every=0.002)
            proc.send_signal(signal.SIGKILL)  # with feedback requests in flight
            for f in futures:
                f.result()
        assert proc.wait(30) == -signal.SIGKILL
        n_answered = len(answered)
        assert 20 <= n_answered < len(ids), n_answered
        proc = _start(env, log)
        _wait(lambda: httpx.get(url + "/ready", timeout=5).status_code == 200)
        with httpx.Client(base_url=url, timeout=60) as c:
            counted = _feedback_total(c, PHISH)
            # every answered label counts; a request cut by the kill after its fsync may count as well
            assert 2 * n_answered <= counted <= 2 * len(ids), (n_answered, counted)
            again = c.post("/v1/feedback", json={"request_id": answered[0], "labels": labels}).json()
            assert again["duplicates"] == 2 and again["recorded"] == 0  # the ledger came back as well
            assert _gauge(c, "phishlens_live_precision", PHISH) is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        journal = state / "feedback.jsonl"
        lines = journal.read_bytes().split(b"\n")
        assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]  # compaction leaves no temp file
        # damage: garbage in place of one line, and the last line cut in half (as a torn write would)
        damaged = lines[:2] + [b"\x00\xff{not json"] + lines[3:-2] + [lines[-2][: len(lines[-2]) // 2]]
        journal.write_bytes(b"\n".join(damaged))
        proc = _start(env, log)
        _wait(lambda: httpx.get(url + "/ready", timeout=5).status_code == 200)
        with httpx.Client(base_url=url, timeout=60) as c:
            assert c.post("/v1/classify", json={"input": "zebra"}).status_code == 200
            assert _feedback_total(c, PHISH) == counted  # the totals live in the header (line 1), intact
        text = log.read_text()
        assert "feedback state" in text and "2 unreadable line(s), the first at line 3" in text
        assert [p for p in state.iterdir() if ".corrupt-" in p.name]  # the damaged journal kept for a look
        print(
            f"kill -9: {n_answered} of {len(ids)} feedback requests answered before the kill, {counted:.0f} "
            f"labels counted after the restart (>= {2 * n_answered})"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _metric_lines(c: httpx.Client, name: str, adapter: str) -> list[float]:
    return [
        float(line.rsplit(" ", 1)[1])
        for line in c.get("/metrics").text.splitlines()
        if line.startswith(name + "{") and f'adapter="{adapter}"' in line
    ]


def _feedback_total(c: httpx.Client, adapter: str) -> float:
    return sum(_metric_lines(c, "phishlens_feedback_total", adapter))


def _gauge(c: httpx.Client, name: str, adapter: str) -> float | None:
    values = _metric_lines(c, name, adapter)
    return values[0] if values else None
