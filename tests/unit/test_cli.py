"""The `phishlens` CLI through typer's CliRunner, with the client sent through an `httpx.MockTransport`."""

from __future__ import annotations

import functools
import json
import sys
import types

import httpx
import pytest
import typer
from typer.testing import CliRunner

from phishlens.clients import PhishlensClient, cli

runner = CliRunner()
SHA = "cd" * 32


def _result(i: int, text: str) -> dict:
    p = 0.95 if "urgent" in text else 0.05
    return {"index": i, "label": "phishing" if p > 0.5 else "legitimate",
            "probs": {"phishing": p, "legitimate": 1 - p}, "score": p, "uncertain": False,
            "truncated": len(text) > 40, "adapter": {"name": "default", "sha256": SHA}}


class FakeServer:
    """Answers the routes the CLI uses and records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status: int | None = None  # force an error answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status is not None:
            return httpx.Response(self.status, json={"error": {"type": "adapter_not_found",
                                                               "message": "no adapter 'nope'"}})
        path = request.url.path
        if path == "/v1/classify":
            texts = json.loads(request.content)["input"]
            texts = [texts] if isinstance(texts, str) else texts
            return httpx.Response(200, json={"id": "c", "data": [_result(i, t) for i, t in enumerate(texts)],
                                             "usage": {"texts": len(texts), "prompt_tokens": 3}})
        if path == "/v1/adapters" and request.method == "GET":
            return httpx.Response(200, json={"data": [
                {"name": "default", "sha256": SHA, "base_model": "smollm2", "default": True},
                {"name": "sms", "sha256": SHA, "base_model": "smollm2", "default": False}]})
        if path == "/v1/adapters" and request.method == "POST":
            body = json.loads(request.content)
            info = {"name": body["name"] or "b", "sha256": SHA, "base_model": "smollm2"}
            return httpx.Response(201, json=info)
        if request.method == "DELETE":
            return httpx.Response(200, json={"name": path.rsplit("/", 1)[1], "unloaded": True})
        return httpx.Response(404, json={"error": {"type": "not_found", "message": path}})


@pytest.fixture()
def server(monkeypatch) -> FakeServer:
    fake = FakeServer()
    factory = functools.partial(PhishlensClient, transport=httpx.MockTransport(fake), backoff=0.0)
    monkeypatch.setattr(cli, "client_factory", factory)
    monkeypatch.delenv("PHISHLENS_URL", raising=False)
    monkeypatch.delenv("PHISHLENS_API_KEY", raising=False)
    monkeypatch.delenv("PHISHLENS_ADMIN_KEY", raising=False)
    return fake


def invoke(*args: str, input: str | None = None, env: dict | None = None):
    return runner.invoke(cli.app, list(args), input=input, env=env, prog_name="phishlens")


def test_help_lists_every_command():
    r = invoke("--help")
    assert r.exit_code == 0, r.output
    for name in ("serve", "classify", "adapters", "prepare-base", "train", "evaluate"):
        assert name in r.output


def test_classify_text_json(server):
    r = invoke("classify", "urgent: verify your password", "--url", "http://srv:9000", "--api-key", "k1")
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["label"] == "phishing" and record["adapter"]["name"] == "default"
    req = server.requests[0]
    assert str(req.url) == "http://srv:9000/v1/classify" and req.headers["authorization"] == "Bearer k1"


def test_url_and_key_from_env(server):
    r = invoke("classify", "hi", env={"PHISHLENS_URL": "http://envhost:1234", "PHISHLENS_API_KEY": "k-env"})
    assert r.exit_code == 0, r.output
    req = server.requests[0]
    assert req.url.host == "envhost" and req.headers["authorization"] == "Bearer k-env"


def test_classify_jsonl_file_batches_and_keeps_ids(server, tmp_path):
    f = tmp_path / "in.jsonl"
    rows = [{"id": f"m{i}", "text": "urgent reply" if i % 2 else "lunch?"} for i in range(5)]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    r = invoke("classify", "--file", str(f), "--batch-size", "2", "--adapter", "sms", "--no-progress")
    assert r.exit_code == 0, r.output
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["id"] for o in out] == [f"m{i}" for i in range(5)]
    assert [o["index"] for o in out] == list(range(5))
    assert [o["label"] for o in out] == ["legitimate", "phishing"] * 2 + ["legitimate"]
    sent = [json.loads(q.content) for q in server.requests]
    assert [len(b["input"]) for b in sent] == [2, 2, 1] and {b["adapter"] for b in sent} == {"sms"}


def test_classify_plain_lines_from_stdin_table(server):
    r = invoke("classify", "--file", "-", "--format", "table",
               input="hello there\n\nurgent: your account is locked, verify it now at the link below\n")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["#", "label", "score", "flg", "adapter", "text"]
    assert lines[1].split()[:5] == ["0", "legitimate", "0.050", "-", "default"]
    assert lines[2].split()[:4] == ["1", "phishing", "0.950", "T"]  # truncated flag
    assert lines[2].endswith("...") and len(lines) == 3


def test_classify_progress_bar_on_stderr(server, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\nb\nc\n")
    r = invoke("classify", "-f", str(f), "--progress")
    assert r.exit_code == 0
    assert "classify" in r.stderr and len(r.stdout.splitlines()) == 3


def test_classify_bad_input(server, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    r = invoke("classify", "--file", str(f))
    assert r.exit_code == 2 and "bad.jsonl:2" in r.stderr and not server.requests
    r = invoke("classify")
    assert r.exit_code == 2 and "exactly one of TEXT or --file" in r.stderr
    r = invoke("classify", "x", "--file", str(f))
    assert r.exit_code == 2


def test_client_error_message_and_exit_code(server):
    server.status = 404
    r = invoke("classify", "hi", "--adapter", "nope")
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: adapter_not_found: no adapter 'nope'"
    assert "Traceback" not in r.output
    server.status = 424  # backend failure: still a 4xx answer
    assert invoke("adapters", "list").exit_code == 2
    server.status = 500
    r = invoke("adapters", "list")
    assert r.exit_code == 1 and r.stderr.startswith("error: adapter_not_found:")


def test_connection_refused_exits_1(monkeypatch):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(cli, "client_factory",
                        functools.partial(PhishlensClient, transport=httpx.MockTransport(refuse)))
    r = invoke("classify", "hi")
    assert r.exit_code == 1 and r.stderr.startswith("error: connection_error:")
    assert "Traceback" not in r.output


def test_adapters_list_load_unload(server):
    r = invoke("adapters", "list")
    assert r.exit_code == 0, r.output
    rows = r.stdout.splitlines()
    assert rows[1].split()[:2] == ["*", "default"] and rows[2].split()[0] == "sms"
    r = invoke("adapters", "list", "--format", "json")
    assert [json.loads(x)["name"] for x in r.stdout.splitlines()] == ["default", "sms"]

    r = invoke("adapters", "load", "bundles/sms-v2", "--name", "sms2", env={"PHISHLENS_ADMIN_KEY": "k-admin"})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["name"] == "sms2"
    req = server.requests[-1]
    assert json.loads(req.content) == {"path": "bundles/sms-v2", "name": "sms2"}
    assert req.headers["authorization"] == "Bearer k-admin"

    r = invoke("adapters", "unload", "sms2", "--api-key", "k-admin")
    assert r.exit_code == 0 and r.stdout.strip() == "unloaded sms2"
    assert server.requests[-1].method == "DELETE" and server.requests[-1].url.path == "/v1/adapters/sms2"


# ---- serve -------------------------------------------------------------------------------------------
def test_serve_builds_settings_from_env_and_options(monkeypatch, tmp_path):
    pytest.importorskip("phishlens.server.settings")
    import phishlens.server.main as server_main

    seen = {}
    monkeypatch.setattr(server_main, "serve", lambda settings: seen.setdefault("settings", settings))
    monkeypatch.setenv("PHISHLENS_BACKEND", "hf")
    monkeypatch.setenv("PHISHLENS_MAX_BATCH", "16")
    r = invoke("serve", "--host", "0.0.0.0", "--port", "8123", "--adapter", "default", "--adapter", "sms",
               "--adapter-root", str(tmp_path), "--base-model", "smollm2")
    assert r.exit_code == 0, r.output
    s = seen["settings"]
    assert (s.host, s.port, s.backend, s.max_batch, s.base_model) == ("0.0.0.0", 8123, "hf", 16, "smollm2")
    assert s.adapters == ["default", "sms"] and s.adapter_roots == [tmp_path.resolve()]


def test_serve_rejects_invalid_settings(monkeypatch):
    pytest.importorskip("phishlens.server.settings")
    import phishlens.server.main as server_main

    monkeypatch.setattr(server_main, "serve", lambda settings: pytest.fail("must not start"))
    r = invoke("serve", "--backend", "tensorrt")
    assert r.exit_code == 2 and r.stderr.startswith("error: invalid_settings:")


# ---- lazily mounted training commands ----------------------------------------------------------------
def test_training_commands_are_imported_only_when_invoked(monkeypatch):
    fake = types.ModuleType("phishlens.training.cli")
    fake.app = typer.Typer()
    calls = []

    @fake.app.command("prepare-base")
    def prepare_base(name: str) -> None:
        calls.append(("prepare-base", name))

    @fake.app.command()
    def train(config: str = "x") -> None:
        calls.append(("train", config))

    monkeypatch.setitem(sys.modules, "phishlens.training.cli", fake)
    r = invoke("prepare-base", "smollm2")
    assert r.exit_code == 0, r.output
    assert calls == [("prepare-base", "smollm2")]
    r = invoke("train", "--config", "sms")
    assert r.exit_code == 0, r.output
    assert calls[-1] == ("train", "sms")
    r = invoke("train", "--help")
    assert r.exit_code == 0 and "--config" in r.output
    r = invoke("evaluate")  # not in this training app
    assert r.exit_code == 1 and "training_unavailable" in r.stderr


def test_cli_works_when_training_is_missing(monkeypatch, server):
    monkeypatch.setitem(sys.modules, "phishlens.training.cli", None)  # import raises ImportError
    assert invoke("--help").exit_code == 0
    r = invoke("train", "--config", "x")
    assert r.exit_code == 1 and r.stderr.startswith("error: training_unavailable:")
    assert "Traceback" not in r.output
    assert invoke("classify", "hi").exit_code == 0
