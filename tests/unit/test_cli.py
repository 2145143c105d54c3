"""The `phishlens` CLI through typer's CliRunner, with the client sent through an `httpx.MockTransport`."""

from __future__ import annotations

import base64
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


THRESHOLDS = {"default": 0.5, "sms": 0.764}


def _result(i: int, text: str, adapter: str = "default") -> dict:
    p = 0.95 if "urgent" in text else 0.05 if adapter == "default" else 0.719
    return {
        "index": i,
        "label": "phishing" if p >= THRESHOLDS[adapter] else "legitimate",
        "probs": {"phishing": p, "legitimate": 1 - p},
        "score": p,
        "uncertain": 0.6 < p < 0.8,
        "truncated": len(text) > 40,
        "adapter": {"name": adapter, "sha256": SHA},
        "style": "sms",
        "style_source": "detected",
        "ood": {"score": 1.5 if "zebra" in text else 0.5, "flagged": "zebra" in text, "threshold": 0.9},
    }


def _adapter(name: str, default: bool = False) -> dict:
    return {
        "name": name,
        "sha256": SHA,
        "base_model": "smollm2",
        "default": default,
        "labels": ["phishing"],
        "created": "2026-11-20T00:00:00Z",
        "loaded_at": 1.0,
        "metrics": {},
        "calibration": _calibration(name),
    }


def _calibration(name: str) -> dict:
    t = THRESHOLDS[name]
    return {"threshold": t, "uncertain_low": t - 0.1, "uncertain_high": t + 0.1, "temperature": 1.0}


class FakeServer:
    """Answers the routes the CLI uses and records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status: int | None = None  # force an error answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status is not None:
            return httpx.Response(
                self.status, json={"error": {"type": "adapter_not_found", "message": "no adapter 'nope'"}}
            )
        path = request.url.path
        if path == "/v1/classify":
            body = json.loads(request.content)
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            names = body.get("adapters") or [body.get("adapter") or "default"]
            if names == ["auto"]:  # routing as the server does it: short texts to "sms", the rest to default
                data = [_result(i, t, "sms" if len(t) < 20 else "default") for i, t in enumerate(texts)]
            else:
                data = [
                    _result(i, t, a) for a in names for i, t in enumerate(texts)
                ]  # server order: by adapter
            return httpx.Response(
                200,
                json={
                    "id": f"clf-{len(self.requests)}",
                    "data": data,
                    "usage": {"texts": len(texts), "prompt_tokens": 3},
                },
            )
        if path == "/v1/adapters" and request.method == "GET":
            return httpx.Response(200, json={"data": [_adapter("default", True), _adapter("sms")]})
        if path == "/v1/adapters" and request.method == "POST":
            body = json.loads(request.content)
            info = {**_adapter("sms"), "name": body["name"] or "b"}
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
    r = invoke(
        "classify",
        "--file",
        "-",
        "--format",
        "table",
        input="hello there\n\nurgent: your account is locked, verify it now at the link below\n",
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "request clf-1  (texts 0-1)"  # the id `phishlens feedback` needs
    assert lines[1].split() == ["#", "default", "text"]
    assert lines[2].split()[:4] == ["0", "legitimate", "0.050", "hello"]
    assert lines[3].split()[:4] == ["1", "phishing", "0.950", "T"]  # truncated flag
    assert lines[3].endswith("...")
    legend = lines[5:]
    assert legend[0].split()[:5] == ["default", "phishing", "when", "score", ">="] and "0.500" in legend[0]
    assert "U = in the adapter's uncertain band" in legend[1] and "T = text truncated" in legend[1]


def test_classify_several_adapters_one_column_each(server):
    """`-a x -a y` and `-a x,y` send `adapters`; the table has one column per adapter and both thresholds."""
    r = invoke("classify", "urgent: verify", "lunch?", "-a", "default", "-a", "sms", "--format", "table")
    assert r.exit_code == 0, r.output
    sent = json.loads(server.requests[0].content)
    assert sent["adapters"] == ["default", "sms"] and "adapter" not in sent
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["#", "default", "sms", "text"]
    assert lines[2].split()[:6] == ["0", "phishing", "0.950", "phishing", "0.950", "urgent:"]
    assert lines[3].split()[:6] == ["1", "legitimate", "0.050", "legitimate", "0.719", "U"]
    assert lines[1].index("sms") == lines[2].index("phishing", 5)  # header sits over its column
    assert any(line.startswith("sms") and "0.764" in line and "0.664" in line for line in lines)
    r = invoke("classify", "x", "-a", "default,sms", "-a", "sms")
    assert json.loads(server.requests[-1].content)["adapters"] == ["default", "sms"]
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(o["index"], o["adapter"]["name"]) for o in out] == [(0, "default"), (0, "sms")]


def test_classify_json_carries_request_id_and_index(server, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\nb\nc\n")
    r = invoke("classify", "-f", str(f), "--batch-size", "2")
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(o["request_id"], o["request_index"], o["index"]) for o in out] == [
        ("clf-1", 0, 0),
        ("clf-1", 1, 1),
        ("clf-2", 0, 2),
    ]


def test_classify_dash_reads_stdin_as_one_text(server):
    r = invoke("classify", "-", input="urgent: hello\nsecond line\n")
    assert r.exit_code == 0, r.output
    assert json.loads(server.requests[0].content)["input"] == ["urgent: hello\nsecond line\n"]
    assert json.loads(r.stdout)["label"] == "phishing"


def test_classify_whole_files_one_text_each(server, tmp_path):
    a, b = tmp_path / "a.eml", tmp_path / "b.txt"
    a.write_text("Subject: urgent\r\nMIME-Version: 1.0\r\n\r\nverify now\r\n", newline="")
    b.write_text("lunch?\n")
    r = invoke("classify", "--whole", str(a), str(b), "--format", "table")
    assert r.exit_code == 0, r.output
    assert json.loads(server.requests[0].content)["input"] == [a.read_bytes().decode(), "lunch?\n"]
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["#", "default", "file"]
    assert lines[2].split()[-1] == "a.eml" and lines[3].split()[-1] == "b.txt"
    r = invoke("classify", "--whole", str(a), "-", input="urgent from stdin")
    assert [json.loads(x)["file"] for x in r.stdout.splitlines()] == [str(a), "-"]


def test_classify_eml_sends_raw_messages_as_typed_inputs(server, tmp_path):
    a, b = tmp_path / "a.eml", tmp_path / "b.eml"
    a.write_bytes(b"Subject: hi\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 at noon\r\n")  # 8-bit
    b.write_bytes(b"Subject: urgent\r\n\r\nverify now\r\n")
    r = invoke("classify", "--eml", str(a), str(b), "-a", "default,sms")
    assert r.exit_code == 0, r.output
    sent = json.loads(server.requests[0].content)
    assert sent["input"][1] == {"email": b.read_bytes().decode(), "encoding": "text"}  # ASCII: byte for byte
    assert sent["input"][0]["encoding"] == "base64"  # 8-bit: base64 of the exact bytes
    assert sent["adapters"] == ["default", "sms"]
    assert [json.loads(x)["file"] for x in r.stdout.splitlines()] == [str(a)] * 2 + [str(b)] * 2


def test_url_is_normalised_or_refused(server):
    for url in ("http://srv:9000/v1", "http://srv:9000/v1/", "http://srv:9000/"):
        r = invoke("classify", "hi", "--url", url)
        assert r.exit_code == 0, (url, r.output)
        assert str(server.requests[-1].url) == "http://srv:9000/v1/classify"
    for url in ("srv:9000", "http://srv:9000/v1/classify"):
        r = invoke("classify", "hi", "--url", url)
        assert r.exit_code == 2 and r.stderr.startswith("error: usage: --url") and "base URL" in r.stderr


def test_color_always_survives_a_pipe_and_never_is_plain(server):
    r = invoke("classify", "urgent", "--format", "table", "--color", "always")
    assert "\x1b[31m" in r.stdout  # phishing in red although CliRunner's stdout is not a terminal
    r = invoke("classify", "urgent", "--format", "table", "--color", "never")
    assert "\x1b[" not in r.stdout
    r = invoke("classify", "urgent", "--format", "table")  # auto: not a terminal
    assert "\x1b[" not in r.stdout


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
    assert r.exit_code == 2 and "give a TEXT ('-' for stdin), --file F" in r.stderr
    r = invoke("classify", "x", "--file", str(f))
    assert r.exit_code == 2 and "not both" in r.stderr
    r = invoke("classify", "--whole", str(f), "--eml", str(f))
    assert r.exit_code == 2 and "--whole or --eml" in r.stderr
    r = invoke("classify", "--whole", str(f.with_name("missing.txt")))
    assert r.exit_code == 2 and "missing.txt" in r.stderr
    assert not server.requests


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

    monkeypatch.setattr(
        cli, "client_factory", functools.partial(PhishlensClient, transport=httpx.MockTransport(refuse))
    )
    r = invoke("classify", "hi")
    assert r.exit_code == 1 and r.stderr.startswith("error: connection_error:")
    assert "Traceback" not in r.output


def test_adapters_list_load_unload(server):
    r = invoke("adapters", "list")
    assert r.exit_code == 0, r.output
    rows = r.stdout.splitlines()
    assert rows[0].split() == ["name", "sha256", "threshold", "uncertain", "base_model"]
    assert rows[1].split() == ["*", "default", SHA[:12], "0.500", "0.400-0.600", "smollm2"]
    assert rows[2].split() == ["sms", SHA[:12], "0.764", "0.664-0.864", "smollm2"]
    r = invoke("adapters", "list", "--format", "json")
    assert [json.loads(x)["name"] for x in r.stdout.splitlines()] == ["default", "sms"]

    r = invoke("adapters", "load", "bundles/sms-v2", "--name", "sms2", env={"PHISHLENS_ADMIN_KEY": "k-admin"})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["name"] == "sms2"
    req = server.requests[-1]
    assert json.loads(req.content) == {"path": "bundles/sms-v2", "name": "sms2", "replace": False}
    assert req.headers["authorization"] == "Bearer k-admin"
    r = invoke("adapters", "load", "bundles/sms-v3", "--name", "sms2", "--replace", "--api-key", "k-admin")
    assert r.exit_code == 0, r.output
    assert json.loads(server.requests[-1].content) == {
        "path": "bundles/sms-v3",
        "name": "sms2",
        "replace": True,
    }

    r = invoke("adapters", "unload", "sms2", "--api-key", "k-admin")
    assert r.exit_code == 0 and r.stdout.strip() == "unloaded sms2"
    assert server.requests[-1].method == "DELETE" and server.requests[-1].url.path == "/v1/adapters/sms2"


# ---- serve -------------------------------------------------------------------------------------------
def test_serve_builds_settings_from_env_and_options(monkeypatch, tmp_path):
    import phishlens.server.main as server_main

    seen = {}
    monkeypatch.setattr(server_main, "serve", lambda settings: seen.setdefault("settings", settings))
    monkeypatch.setenv("PHISHLENS_BACKEND", "hf")
    monkeypatch.setenv("PHISHLENS_MAX_BATCH", "16")
    r = invoke(
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8123",
        "--adapter",
        "default",
        "--adapter",
        "sms",
        "--adapter-root",
        str(tmp_path),
        "--base-model",
        "smollm2",
    )
    assert r.exit_code == 0, r.output
    s = seen["settings"]
    assert (s.host, s.port, s.backend, s.max_batch, s.base_model) == ("0.0.0.0", 8123, "hf", 16, "smollm2")
    assert s.adapters == ["default", "sms"] and s.adapter_roots == [tmp_path.resolve()]


def test_serve_rejects_invalid_settings(monkeypatch):
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


def test_boolean_flags_are_named_once():
    """No `--no-no-resume`: a flag that defaults off is one option, a flag that defaults on has one
    `--no-`."""
    for command in (["train"], ["evaluate"], ["prepare-base"], ["data", "fetch"], ["classify"], ["explain"]):
        r = invoke(*command, "--help", env={"COLUMNS": "200"})
        assert r.exit_code == 0, (command, r.output)
        assert "--no-no-" not in r.output, command
    train = invoke("train", "--help", env={"COLUMNS": "200"}).output
    assert "--resume" in train and "--no-resume" in train
    evaluate = invoke("evaluate", "--help", env={"COLUMNS": "200"}).output
    assert "--from-manifests" in evaluate and "--no-from-manifests" not in evaluate
    assert "--no-force" not in invoke("prepare-base", "--help", env={"COLUMNS": "200"}).output


@pytest.mark.parametrize("command", ["explain", "probe"])
def test_explain_and_probe_eml_send_the_raw_message_as_a_typed_input(server, tmp_path, command):
    raw = b"Subject: Invoice\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nPay \xe9 now\r\n"
    f = tmp_path / "m.eml"
    f.write_bytes(raw)
    invoke(command, "--eml", str(f))  # the fake server has no explain/probe route: only the request matters
    body = json.loads(server.requests[-1].content)
    item = body["input"]
    assert set(item) >= {"email"} and item["email"] != raw.decode("latin-1")  # 8-bit: sent base64
    assert base64.b64decode(item["email"]) == raw and item["encoding"] == "base64"
    r = invoke(command, "--eml", str(tmp_path / "absent.eml"))
    assert r.exit_code == 2 and "absent.eml" in r.stderr


def test_classify_auto_shows_the_adapter_that_answered_and_the_ood_flag(server):
    r = invoke(
        "classify", "hi zebra", "a much longer message about a meeting", "-a", "auto", "--format", "table"
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["#", "sms", "default", "text"]  # one column per adapter that answered
    assert lines[2].split()[:5] == ["0", "legitimate", "0.719", "UO", "-"]  # O: out of distribution
    assert lines[3].split()[:4] == ["1", "-", "legitimate", "0.050"]
    assert "O = unlike the adapter's reference texts" in lines[-1]
    assert json.loads(server.requests[0].content)["adapter"] == "auto"
