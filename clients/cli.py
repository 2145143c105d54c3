"""The `phishlens` command line: run the server, classify texts, manage adapters, train.

Only the client lives here at import time. `serve` imports the server inside the command, and the
training commands (`prepare-base`, `train`, `evaluate`) are placeholders that import
`phishlens.training.cli` when one of them runs, so `phishlens --help` and the client commands work
on a host where torch is missing or training/ is broken.

Client errors print `error: <type>: <message>` on stderr and exit 2 for 4xx answers, 1 otherwise.
Tests swap `client_factory` to send requests through an `httpx.MockTransport`.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from phishlens.clients.client import DEFAULT_BASE_URL, DEFAULT_BATCH_SIZE, PhishlensClient
from phishlens.clients.errors import PhishlensError
from phishlens.clients.types import AdapterInfo, ClassifyResult

client_factory: Callable[..., PhishlensClient] = PhishlensClient
"""Builds the client for every command as `client_factory(url, api_key=...)`; swapped in tests."""

TRAINING_MODULE = "phishlens.training.cli"
TRAINING_COMMANDS = {
    "prepare-base": "Prepare an embedded base model (GGUF -> HF checkpoint) in the cache.",
    "train": "Fine-tune a LoRA adapter and write an adapter bundle.",
    "evaluate": "Evaluate adapter bundles (per-style and cross-domain metrics).",
    "augment": "Add or rebuild bundle artefacts (drift reference, probes) of existing bundles.",
    "diagnose": "Diagnose generalisation failures: probes, logit lens, SHAP, minimal pairs, label noise.",
}


class _LazyCommand(TyperCommand):
    """Stands in for a command of another typer app until it is invoked (then imports it).

    Help listings use the static `help`; `phishlens train --help` and real runs go to the real command,
    because `make_context` hands back the real command's context.
    """

    def __init__(self, name: str, module: str, help: str) -> None:
        super().__init__(
            name,
            help=help,
            short_help=help,
            add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            rich_help_panel="Training",
        )
        self.module = module

    def resolve(self) -> Any:
        """The real command object from `<module>.app` (a typer app)."""
        app = importlib.import_module(self.module).app
        command = typer.main.get_command(app)
        if isinstance(command, TyperGroup):
            command = command.commands.get(self.name or "")
        # else: a one-command typer app collapses into that command
        if command is None:
            raise LookupError(f"{self.module} has no command {self.name!r}")
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            real = self.resolve()
        except Exception as exc:  # ImportError, missing torch, a broken module: report, never a traceback
            typer.echo(f"error: training_unavailable: cannot load {self.module}: {exc}", err=True)
            raise typer.Exit(1) from None
        return real.make_context(info_name, args, parent=parent, **extra)


class _PhishlensGroup(TyperGroup):
    """The top-level group: typer's, plus the lazily imported training commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, help in TRAINING_COMMANDS.items():
            self.commands.setdefault(name, _LazyCommand(name, TRAINING_MODULE, help))


app = typer.Typer(
    name="phishlens",
    cls=_PhishlensGroup,
    help="Serve, query and train LoRA phishing classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
adapters_app = typer.Typer(help="List, load and unload the server's adapters.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")


class OutputFormat(str, Enum):
    json = "json"
    table = "table"


UrlOpt = Annotated[
    str, typer.Option("--url", envvar="PHISHLENS_URL", help="Server base URL.", show_envvar=True)
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="PHISHLENS_API_KEY", help="Bearer API key.", show_default=False),
]
AdminKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=["PHISHLENS_ADMIN_KEY", "PHISHLENS_API_KEY"],
        help="Admin key (admin routes).",
        show_default=False,
    ),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


@contextmanager
def _client(url: str, api_key: str | None) -> Iterator[PhishlensClient]:
    """A client whose errors end the command with a one-line message and exit code 2 (4xx) or 1."""
    try:
        with client_factory(url, api_key=api_key) as client:
            yield client
    except PhishlensError as exc:
        typer.echo(f"error: {exc.type}: {exc.message}", err=True)
        raise typer.Exit(2 if exc.is_client_error else 1) from exc


def _fail(kind: str, message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {kind}: {message}", err=True)
    return typer.Exit(code)


# --------------------------------------------------------------------------------------------------
# serve


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (env PHISHLENS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env PHISHLENS_PORT).")] = None,
    backend: Annotated[str | None, typer.Option(help="auto | vllm | hf (env PHISHLENS_BACKEND).")] = None,
    base_model: Annotated[
        str | None, typer.Option(help="Embedded name, HF directory or hub id (env PHISHLENS_BASE_MODEL).")
    ] = None,
    adapter: Annotated[
        list[str] | None,
        typer.Option(help="Bundle to load at start-up; repeatable (env PHISHLENS_ADAPTERS)."),
    ] = None,
    adapter_root: Annotated[
        list[Path] | None,
        typer.Option(help="Directory bundles may be loaded from; repeatable (env PHISHLENS_ADAPTER_ROOTS)."),
    ] = None,
    default_adapter: Annotated[
        str | None, typer.Option(help="Adapter for requests naming none (env PHISHLENS_DEFAULT_ADAPTER).")
    ] = None,
    dtype: Annotated[str | None, typer.Option(help="Engine dtype (env PHISHLENS_DTYPE).")] = None,
    log_json: Annotated[bool | None, typer.Option("--log-json/--no-log-json", help="JSON log lines.")] = None,
) -> None:
    """Run the inference server (options override PHISHLENS_* environment variables)."""
    import pydantic

    from phishlens.server.main import serve as run_server
    from phishlens.server.settings import Settings

    options = {
        "host": host,
        "port": port,
        "backend": backend,
        "base_model": base_model,
        "adapters": adapter or None,
        "adapter_roots": adapter_root or None,
        "default_adapter": default_adapter,
        "dtype": dtype,
        "log_json": log_json,
    }
    try:
        settings = Settings(**{k: v for k, v in options.items() if v is not None})
    except pydantic.ValidationError as exc:
        raise _fail("invalid_settings", str(exc).replace("\n", " ")) from exc
    run_server(settings)


# --------------------------------------------------------------------------------------------------
# classify


@app.command()
def classify(
    text: Annotated[str | None, typer.Argument(help="Text to classify (or use --file).")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="JSONL with a 'text' field, or one text per line; '-' for stdin.",
            allow_dash=True,
        ),
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="Adapter name (server default when omitted).")] = None,
    output: FormatOpt = OutputFormat.json,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per request.")] = DEFAULT_BATCH_SIZE,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: if a terminal)."),
    ] = None,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """Classify TEXT or every text in --file; prints one JSON line (or table row) per result."""
    if (text is None) == (file is None):
        raise _fail("usage", "give exactly one of TEXT or --file")
    if text is not None:
        texts, ids = [text], [None]
    else:
        assert file is not None
        try:
            texts, ids = _read_texts(file)
        except (OSError, ValueError) as exc:
            raise _fail("bad_input", str(exc)) from exc
    show_progress = progress if progress is not None else (file is not None and sys.stderr.isatty())
    with _client(url, api_key) as client:
        results = client.iter_classify(texts, batch_size=batch_size, adapter=adapter, progress=show_progress)
        if output is OutputFormat.json:
            for result in results:
                record = result.model_dump(mode="json")
                if ids[result.index] is not None:
                    record = {"id": ids[result.index], **record}
                typer.echo(json.dumps(record))
        else:
            typer.echo(_table_header())
            for result in results:
                typer.echo(_table_row(result, texts[result.index]))


def _read_texts(path: Path) -> tuple[list[str], list[Any]]:
    """Texts and optional ids from a JSONL file (`text`, optional `id`) or a one-text-per-line file.

    The first non-blank line decides: a JSON object makes the whole file JSONL.
    """
    raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(raw.split("\n"), 1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no texts")
    if not _is_json_object(lines[0][1]):
        return [line for _, line in lines], [None] * len(lines)
    texts, ids = [], []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f"{path}:{n}: expected an object with a string 'text' field")
        texts.append(record["text"])
        ids.append(record.get("id"))
    return texts, ids


def _is_json_object(line: str) -> bool:
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


_TABLE = "{:>5}  {:<10}  {:>6}  {:<3}  {:<16}  {}"


def _table_header() -> str:
    return _TABLE.format("#", "label", "score", "flg", "adapter", "text")


def _table_row(result: ClassifyResult, text: str, width: int = 60) -> str:
    flags = ("U" if result.uncertain else "") + ("T" if result.truncated else "")
    preview = " ".join(text.split())
    if len(preview) > width:
        preview = preview[: width - 3] + "..."
    adapter = result.adapter.name if result.adapter else "-"
    return _TABLE.format(result.index, result.label, f"{result.score:.3f}", flags or "-", adapter, preview)


# --------------------------------------------------------------------------------------------------
# explain


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="Text to explain ('-' reads stdin).")],
    adapter: Annotated[str | None, typer.Option(help="Adapter name (server default when omitted).")] = None,
    granularity: Annotated[str, typer.Option(help="word | token.")] = "word",
    max_evals: Annotated[
        int | None, typer.Option(min=4, help="Most texts scored (server default/cap).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML page here.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON response instead of colours.")
    ] = False,
    color: Annotated[
        bool | None, typer.Option("--color/--no-color", help="ANSI colours (default: if stdout is a terminal).")
    ] = None,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """SHAP attributions of TEXT: tokens coloured red (towards phishing) / blue (towards legitimate)."""
    from phishlens.explain.render import render_terminal  # stdlib-only module: keeps the client light

    if text == "-":
        text = sys.stdin.read()
    if granularity not in ("word", "token"):
        raise _fail("usage", "--granularity must be 'word' or 'token'")
    with _client(url, api_key) as client:
        res = client.explain(
            text, adapter, granularity=granularity, max_evals=max_evals, html=html is not None
        )
    if html is not None:
        html.write_text(res.html or "", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(res.model_dump(mode="json", exclude={"html"})))
        return
    use_color = color if color is not None else sys.stdout.isatty()
    typer.echo(render_terminal(res.tokens, res.attributions, prediction=res.prediction,
                               base_value=res.base_value, color=use_color))
    name = res.adapter.name if res.adapter else "-"
    typer.echo(f"label: {res.label}   adapter: {name}   evaluations: {res.evaluations}/{res.max_evals}   "
               f"additivity error: {res.additivity_error:.2e}   {res.seconds:.2f}s")


# --------------------------------------------------------------------------------------------------
# probe


def _probe_cell(value: Any) -> str:
    """A binary probe's P(positive) as 0.00, a multi-class probe's top class as `class:0.00`."""
    if isinstance(value, dict):
        top = max(value, key=value.get) if value else "-"
        return f"{top}:{value.get(top, 0.0):.2f}"
    return f"{float(value):.2f}"


@app.command()
def probe(
    text: Annotated[str, typer.Argument(help="Text to probe ('-' reads stdin).")],
    adapter: Annotated[str | None, typer.Option(help="Adapter name (server default when omitted).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON response instead of a table.")] = False,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """Per-layer readings of TEXT: logit-lens P(phishing) and the adapter's probes (label, style, source, concepts)."""
    if text == "-":
        text = sys.stdin.read()
    with _client(url, api_key) as client:
        res = client.probe(text, adapter)
    if as_json:
        typer.echo(json.dumps(res.model_dump(mode="json")))
        return
    names = list(res.probes)
    typer.echo("  ".join([f"{'layer':<22}", f"{'lens':>5}", *(f"{n[:14]:>14}" for n in names)]))
    for i, layer in enumerate(res.layers):
        cells = [_probe_cell(res.probes[n][i]) for n in names]
        typer.echo("  ".join([f"{layer:<22}", f"{res.logit_lens[i]:>5.2f}", *(f"{c[:14]:>14}" for c in cells)]))
    name = res.adapter.name if res.adapter else "-"
    typer.echo(f"label: {res.label}   score: {res.score:.3f}   adapter: {name}")


# --------------------------------------------------------------------------------------------------
# feedback


def _feedback_labels(items: list[str]) -> dict[int, str] | list[str]:
    """`phishing legitimate ...` (one per text, in order) or `0=phishing 3=legitimate`; not a mix."""
    keyed = ["=" in item for item in items]
    if any(keyed) and not all(keyed):
        raise ValueError("give every label as INDEX=LABEL, or none of them")
    pairs = [item.split("=", 1) if "=" in item else (str(i), item) for i, item in enumerate(items)]
    for _, label in pairs:
        if label not in ("phishing", "legitimate"):
            raise ValueError(f"label {label!r} is not 'phishing' or 'legitimate'")
    try:
        out = {int(index): label for index, label in pairs}
    except ValueError as exc:
        raise ValueError(f"an INDEX is not an integer: {exc}") from exc
    return out if all(keyed) else [label for _, label in pairs]


@app.command()
def feedback(
    request_id: Annotated[str, typer.Argument(help="The `id` of a /v1/classify response (clf-...).")],
    labels: Annotated[
        list[str], typer.Argument(help="True labels: one per text in request order, or INDEX=LABEL pairs.")
    ],
    adapter: Annotated[str | None, typer.Option(help="Only this adapter's verdicts (default: all).")] = None,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """Send true labels for a served request; prints each verdict's outcome (tp/fp/tn/fn) as JSON."""
    try:
        parsed = _feedback_labels(labels)
    except ValueError as exc:
        raise _fail("usage", str(exc)) from exc
    with _client(url, api_key) as client:
        res = client.feedback(request_id, parsed, adapter=adapter)
    typer.echo(json.dumps(res.model_dump(mode="json")))


# --------------------------------------------------------------------------------------------------
# adapters list | load | unload


@adapters_app.command("list")
def adapters_list(
    output: FormatOpt = OutputFormat.table, url: UrlOpt = DEFAULT_BASE_URL, api_key: KeyOpt = None
) -> None:
    """List the adapters the server hosts."""
    with _client(url, api_key) as client:
        adapters = client.list_adapters()
    if output is OutputFormat.json:
        for info in adapters:
            typer.echo(json.dumps(info.model_dump(mode="json")))
        return
    row = "{:<1} {:<24}  {:<14}  {}"
    typer.echo(row.format("", "name", "sha256", "base_model"))
    for info in adapters:
        typer.echo(_adapter_row(row, info))


def _adapter_row(row: str, info: AdapterInfo) -> str:
    sha = (info.sha256 or "-")[:12]
    return row.format("*" if info.default else "", info.name, sha, info.base_model or "-")


@adapters_app.command("load")
def adapters_load(
    path: Annotated[str, typer.Argument(help="Bundle name under an adapter root, or a path inside one.")],
    name: Annotated[str | None, typer.Option(help="Serve it under this name.")] = None,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: AdminKeyOpt = None,
) -> None:
    """Load an adapter bundle on the server (admin)."""
    with _client(url, api_key) as client:
        info = client.load_adapter(path, name=name)
    typer.echo(json.dumps(info.model_dump(mode="json")))


@adapters_app.command("unload")
def adapters_unload(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: AdminKeyOpt = None,
) -> None:
    """Unload an adapter from the server (admin)."""
    with _client(url, api_key) as client:
        client.unload_adapter(name)
    typer.echo(f"unloaded {name}")


def main() -> None:
    """Console-script entry point (`phishlens`)."""
    app(prog_name="phishlens")


if __name__ == "__main__":
    main()
