"""Sync and async HTTP clients for the phishlens server (DESIGN.md §5, STYLE.md H12).

Every endpoint is described once as a `_Call` (method, path, JSON body, response parser); the two
clients differ only in how they send it (`httpx.Client` vs `httpx.AsyncClient`, `time.sleep` vs
`asyncio.sleep`). Requests are built by `_BaseClient._build` and responses parsed by `_Call.parse`,
so the sync and async paths cannot drift apart.

Pass `transport=` to test without a network: `httpx.MockTransport(handler)` for canned answers,
`httpx.ASGITransport(app=create_app(...))` (async client) to drive the real app in-process.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from phishlens import __version__
from phishlens.clients.protocol import (
    AdapterDriftInfo,
    AdapterInfo,
    AdapterList,
    ClassifyResponse,
    ClassifyResult,
    DriftResponse,
    EmailInput,
    ExplainResponse,
    FeedbackResponse,
    HealthStatus,
    InputItem,
    KServeExplainResponse,
    KServeModel,
    KServePredictResponse,
    ProbeResponse,
    errors,
)

# A plain string (style detected by the server), a typed input, or the same as a dict.
ClassifyInput = InputItem | dict[str, Any]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 60.0
DEFAULT_BATCH_SIZE = 32  # under the server's default cap of 64 texts per request
T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)


# --------------------------------------------------------------------------------------------------
# Response parsing (shared by both clients)


def _decode(response: httpx.Response) -> Any:
    """The body as JSON when it is JSON, else as text (error pages from proxies are HTML)."""
    try:
        return response.json()
    except ValueError:
        return response.text


def _raise_for_status(response: httpx.Response) -> None:
    if not response.is_success:
        raise errors.parse_error(response.status_code, _decode(response))


def _model_parser(model: type[M], unwrap: str | None = None) -> Callable[[httpx.Response], M]:
    """A parser that checks the status and validates the JSON body into `model`.

    `unwrap`: if the body is `{unwrap: {...}}`, validate the inner object (tolerates envelopes).
    """

    def parse(response: httpx.Response) -> M:
        _raise_for_status(response)
        body = _decode(response)
        if unwrap and isinstance(body, dict) and isinstance(body.get(unwrap), dict):
            body = body[unwrap]
        try:
            return model.model_validate(body)
        except pydantic.ValidationError as exc:
            raise errors.PhishlensError(
                f"unexpected {model.__name__} body from {response.request.url.path}: {exc}",
                status=response.status_code,
                type="invalid_response",
                payload=body,
            ) from exc

    return parse


def _parse_none(response: httpx.Response) -> None:
    _raise_for_status(response)


def _parse_text(response: httpx.Response) -> str:
    _raise_for_status(response)
    return response.text


def _parse_ready(response: httpx.Response) -> bool:
    """`/ready`: 2xx is ready, 503 is "not yet"; anything else is an error."""
    if response.status_code == 503:
        return False
    _raise_for_status(response)
    return True


def _parse_adapter_list(response: httpx.Response) -> list[AdapterInfo]:
    return _model_parser(AdapterList)(response).data


# --------------------------------------------------------------------------------------------------
# Endpoint descriptions (shared by both clients)


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    retry: bool = True  # retry on 429/503 (not for probes like /ready, where 503 is an answer)
    timeout: float | None = None  # overrides the client's timeout (explanations run for minutes)


def _wire_input(item: ClassifyInput) -> Any:
    """A plain string as is; a typed input (pydantic model) as its JSON object."""
    if isinstance(item, pydantic.BaseModel):
        return item.model_dump(exclude_none=True)
    return item


def _classify_call(
    input: ClassifyInput | Sequence[ClassifyInput],
    adapter: str | None,
    adapters: Sequence[str] | None,
    return_text: bool = False,
) -> _Call[ClassifyResponse]:
    if isinstance(input, (str, Mapping, pydantic.BaseModel)):
        wire: Any = _wire_input(input)
    else:
        wire = [_wire_input(i) for i in input]
    body: dict[str, Any] = {"input": wire}
    if adapter is not None:
        body["adapter"] = adapter
    if adapters is not None:
        body["adapters"] = list(adapters)
    if return_text:
        body["return_text"] = True
    return _Call("POST", "/v1/classify", _model_parser(ClassifyResponse), json=body)


def email_input(raw: bytes | str) -> EmailInput:
    """A raw message as a typed input: text as is; bytes as text when ASCII (base64 otherwise, so 8-bit
    bodies in any charset reach the server's parser byte for byte)."""
    if isinstance(raw, str):
        return EmailInput(email=raw)
    data = bytes(raw)
    if data.isascii():
        return EmailInput(email=data.decode("ascii"))
    return EmailInput(email=base64.b64encode(data).decode("ascii"), encoding="base64")


FeedbackLabels = Mapping[int, str] | Sequence[str] | Sequence[Mapping[str, Any]]


def _feedback_call(request_id: str, labels: FeedbackLabels, adapter: str | None) -> _Call[FeedbackResponse]:
    """`labels`: {index: label}, one label per text in order, or {"index", "label", "adapter"?} dicts."""
    if isinstance(labels, Mapping):
        items: list[dict[str, Any]] = [{"index": int(i), "label": lab} for i, lab in labels.items()]
    else:
        items = [
            {"index": i, "label": lab} if isinstance(lab, str) else dict(lab) for i, lab in enumerate(labels)
        ]
    if adapter is not None:
        items = [{**item, "adapter": item.get("adapter", adapter)} for item in items]
    body = {"request_id": request_id, "labels": items}
    return _Call("POST", "/v1/feedback", _model_parser(FeedbackResponse), json=body)


def _load_adapter_call(path: str, name: str | None, replace: bool) -> _Call[AdapterInfo]:
    body = {"path": path, "name": name, "replace": replace}
    return _Call("POST", "/v1/adapters", _model_parser(AdapterInfo, unwrap="data"), json=body)


def _unload_adapter_call(name: str) -> _Call[None]:
    return _Call("DELETE", f"/v1/adapters/{quote(name, safe='')}", _parse_none)


def _predict_call(
    model: str, instances: Sequence[Any], return_text: bool = False
) -> _Call[KServePredictResponse]:
    path = f"/v1/models/{quote(model, safe='')}:predict"
    body: dict[str, Any] = {"instances": [_wire_input(i) for i in instances]}
    if return_text:
        body["return_text"] = True
    return _Call("POST", path, _model_parser(KServePredictResponse), json=body)


def _model_info_call(model: str) -> _Call[KServeModel]:
    return _Call("GET", f"/v1/models/{quote(model, safe='')}", _model_parser(KServeModel))


EXPLAIN_TIMEOUT = 600.0  # one explanation is hundreds of forward passes


def _explain_body(granularity: str, max_evals: int | None, html: bool, return_text: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"granularity": granularity, "html": html}
    if max_evals is not None:
        body["max_evals"] = max_evals
    if return_text:
        body["return_text"] = True
    return body


def _explain_call(
    input: ClassifyInput,
    adapter: str | None,
    granularity: str,
    max_evals: int | None,
    html: bool,
    timeout: float | None,
    return_text: bool = False,
) -> _Call[ExplainResponse]:
    body = {"input": _wire_input(input), **_explain_body(granularity, max_evals, html, return_text)}
    if adapter is not None:
        body["adapter"] = adapter
    return _Call(
        "POST",
        "/v1/explain",
        _model_parser(ExplainResponse),
        json=body,
        timeout=timeout if timeout is not None else EXPLAIN_TIMEOUT,
    )


def _kserve_explain_call(
    model: str,
    input: ClassifyInput,
    granularity: str,
    max_evals: int | None,
    html: bool,
    timeout: float | None,
    return_text: bool = False,
) -> _Call[KServeExplainResponse]:
    body = {"instances": [_wire_input(input)], **_explain_body(granularity, max_evals, html, return_text)}
    return _Call(
        "POST",
        f"/v1/models/{quote(model, safe='')}:explain",
        _model_parser(KServeExplainResponse),
        json=body,
        timeout=timeout if timeout is not None else EXPLAIN_TIMEOUT,
    )


def _probe_call(input: ClassifyInput, adapter: str | None, return_text: bool = False) -> _Call[ProbeResponse]:
    body: dict[str, Any] = {"input": _wire_input(input)}
    if adapter is not None:
        body["adapter"] = adapter
    if return_text:
        body["return_text"] = True
    return _Call("POST", "/v1/probe", _model_parser(ProbeResponse), json=body)


_LIST_ADAPTERS = _Call("GET", "/v1/adapters", _parse_adapter_list)
_HEALTH = _Call("GET", "/health", _model_parser(HealthStatus))
_READY = _Call("GET", "/ready", _parse_ready, retry=False)
_METRICS = _Call("GET", "/metrics", _parse_text)
_DRIFT = _Call("GET", "/v1/drift", _model_parser(DriftResponse))


# --------------------------------------------------------------------------------------------------
# Batching helpers (shared by both clients)


def _chunks(texts: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """(offset, chunk) pairs of at most `size` texts, lazily (works on generators)."""
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    it = iter(texts)
    offset = 0
    while chunk := list(itertools.islice(it, size)):
        yield offset, chunk
        offset += len(chunk)


def _rebase(response: ClassifyResponse, offset: int) -> list[ClassifyResult]:
    """Results of one chunk, ordered by input, with `index` counted from the start of all texts."""
    ordered = sorted(response.data, key=lambda r: r.index)  # stable: keeps adapter order per input
    return [r.model_copy(update={"index": r.index + offset}) for r in ordered]


def _progress_bar(texts: Iterable[str], enabled: bool) -> Any:
    from tqdm import tqdm  # only when asked for

    total = len(texts) if isinstance(texts, Sized) else None
    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="text", desc="classify")


# --------------------------------------------------------------------------------------------------
# Shared configuration, request building and retry policy


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for 429 (overloaded) and 503 (not ready) only: other failures are not transient.

    Delay before retry n (0-based): the server's `Retry-After` seconds if given, else
    `backoff * 2**n`; both capped at `max_backoff`.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, call: _Call[Any], response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before resending, or None to stop and parse this response."""
        if not call.retry or response.status_code not in errors.RETRYABLE_STATUSES:
            return None
        if attempt >= self.max_retries:
            return None
        retry_after = response.headers.get("retry-after")
        try:
            wait = float(retry_after) if retry_after is not None else self.backoff * 2**attempt
        except ValueError:  # an HTTP date: not worth parsing for a bounded client-side wait
            wait = self.backoff * 2**attempt
        return max(0.0, min(wait, self.max_backoff))


class _BaseClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self.headers = {"User-Agent": f"phishlens-client/{__version__}", **(headers or {})}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def _request_kwargs(self, call: _Call[Any]) -> dict[str, Any]:
        """Arguments for `httpx.(Async)Client.build_request`: the one place requests are built."""
        kwargs: dict[str, Any] = {
            "method": call.method,
            "url": self.base_url + call.path,
            "headers": self.headers,
            "timeout": call.timeout if call.timeout is not None else self.timeout,
        }
        if call.json is not None:
            kwargs["json"] = call.json
        return kwargs

    def _connection_error(self, exc: httpx.TransportError) -> errors.ConnectionError:
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
        return errors.ConnectionError(f"{self.base_url}: {exc or type(exc).__name__}", type=kind)

    def _not_ready_after(self, timeout: float) -> errors.NotReadyError:
        return errors.NotReadyError(f"{self.base_url} not ready after {timeout:g}s", type="timeout")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


# --------------------------------------------------------------------------------------------------
# The clients: each public method is one line over `_send`; only I/O differs between them.


class PhishlensClient(_BaseClient):
    """Blocking client. Use as a context manager, or call `close()`.

    `transport`: an `httpx.BaseTransport` (e.g. `httpx.MockTransport`); `http_client`: a ready
    `httpx.Client` to send through (e.g. FastAPI's `TestClient`), which the caller keeps owning.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff, headers=headers
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport)

    def _send(self, call: _Call[T]) -> T:
        for attempt in itertools.count():
            request = self._http.build_request(**self._request_kwargs(call))
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                raise self._connection_error(exc) from exc
            delay = self.retry.delay(call, response, attempt)
            if delay is None:
                return call.parse(response)
            response.close()
            time.sleep(delay)
        raise AssertionError("unreachable")

    def classify(
        self,
        input: ClassifyInput | Sequence[ClassifyInput],
        adapter: str | None = None,
        adapters: Sequence[str] | None = None,
        *,
        return_text: bool = False,
    ) -> ClassifyResponse:
        """Score one input or a list (plain strings, or typed `EmailInput` / `SmsInput` / `UrlInput`);
        `adapters` scores every input through each named adapter; `return_text` returns the model's text."""
        return self._send(_classify_call(input, adapter, adapters, return_text))

    def classify_email(
        self,
        raw: bytes | str,
        adapter: str | None = None,
        adapters: Sequence[str] | None = None,
        *,
        return_text: bool = False,
    ) -> ClassifyResponse:
        """Classify one raw RFC 822 message (e.g. the bytes of an .eml file) as the server parses it."""
        return self._send(_classify_call(email_input(raw), adapter, adapters, return_text))

    def iter_classify(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        adapter: str | None = None,
        progress: bool = False,
    ) -> Iterator[ClassifyResult]:
        """Classify any number of texts in requests of `batch_size`, yielding results in input order."""
        with _progress_bar(texts, progress) as bar:
            for offset, chunk in _chunks(texts, batch_size):
                results = _rebase(self.classify(chunk, adapter=adapter), offset)
                bar.update(len(chunk))
                yield from results

    def classify_many(
        self,
        texts: Iterable[str],
        batch_size: int = DEFAULT_BATCH_SIZE,
        adapter: str | None = None,
        progress: bool = False,
    ) -> list[ClassifyResult]:
        """`iter_classify` collected into a list."""
        return list(self.iter_classify(texts, batch_size=batch_size, adapter=adapter, progress=progress))

    def feedback(
        self, request_id: str, labels: FeedbackLabels, adapter: str | None = None
    ) -> FeedbackResponse:
        """True labels for a served classify answer (`request_id` is its `id`); idempotent.

        `labels`: {index: label}, one label per text in request order, or dicts {"index", "label",
        "adapter"?}; `adapter` limits every label to that adapter's verdict.
        """
        return self._send(_feedback_call(request_id, labels, adapter))

    def list_adapters(self) -> list[AdapterInfo]:
        return self._send(_LIST_ADAPTERS)

    def load_adapter(self, path: str, name: str | None = None, replace: bool = False) -> AdapterInfo:
        """Load a bundle directory (a path on the server's disk); admin. `replace`: swap the weights of an
        adapter already loaded under `name` without a gap."""
        return self._send(_load_adapter_call(str(path), name, replace))

    def unload_adapter(self, name: str) -> None:
        """Unload an adapter; admin."""
        return self._send(_unload_adapter_call(name))

    def health(self) -> HealthStatus:
        return self._send(_HEALTH)

    def ready(self) -> bool:
        """True when the engine is up and its golden checks pass (503 answers False)."""
        return self._send(_READY)

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.5) -> None:
        """Poll `/ready` until it answers ready; raise NotReadyError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.ready():
                    return
            except errors.ConnectionError:
                pass  # server not listening yet
            if time.monotonic() >= deadline:
                raise self._not_ready_after(timeout)
            time.sleep(interval)

    def explain(
        self,
        input: ClassifyInput,
        adapter: str | None = None,
        *,
        granularity: str = "word",
        max_evals: int | None = None,
        html: bool = False,
        timeout: float | None = None,
        return_text: bool = False,
    ) -> ExplainResponse:
        """SHAP attributions of one text (`html=True` adds a self-contained HTML page); waits up to 600 s."""
        return self._send(_explain_call(input, adapter, granularity, max_evals, html, timeout, return_text))

    def kserve_explain(
        self,
        model: str,
        input: ClassifyInput,
        *,
        granularity: str = "word",
        max_evals: int | None = None,
        html: bool = False,
        timeout: float | None = None,
        return_text: bool = False,
    ) -> KServeExplainResponse:
        """KServe V1 `POST /v1/models/{model}:explain` for one text."""
        return self._send(
            _kserve_explain_call(model, input, granularity, max_evals, html, timeout, return_text)
        )

    def probe(
        self, input: ClassifyInput, adapter: str | None = None, *, return_text: bool = False
    ) -> ProbeResponse:
        """Per-layer probe outputs and logit-lens P(phishing) of one text (`POST /v1/probe`)."""
        return self._send(_probe_call(input, adapter, return_text))

    def predict(
        self, model: str, instances: Sequence[Any], *, return_text: bool = False
    ) -> KServePredictResponse:
        """KServe V1 `POST /v1/models/{model}:predict`."""
        return self._send(_predict_call(model, instances, return_text))

    def model_info(self, model: str) -> KServeModel:
        """KServe V1 `GET /v1/models/{model}`."""
        return self._send(_model_info_call(model))

    def metrics(self) -> str:
        """The Prometheus exposition text of `/metrics`."""
        return self._send(_METRICS)

    def drift(self) -> list[AdapterDriftInfo]:
        """Drift state per loaded adapter (`GET /v1/drift`)."""
        return self._send(_DRIFT).data

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> PhishlensClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncPhishlensClient(_BaseClient):
    """Asyncio client with the same methods as `PhishlensClient`, awaited. Use `async with`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff, headers=headers
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport)

    async def _send(self, call: _Call[T]) -> T:
        for attempt in itertools.count():
            request = self._http.build_request(**self._request_kwargs(call))
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                raise self._connection_error(exc) from exc
            delay = self.retry.delay(call, response, attempt)
            if delay is None:
                return call.parse(response)
            await response.aclose()
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def classify(
        self,
        input: ClassifyInput | Sequence[ClassifyInput],
        adapter: str | None = None,
        adapters: Sequence[str] | None = None,
        *,
        return_text: bool = False,
    ) -> ClassifyResponse:
        """Score one input or a list (plain strings, or typed `EmailInput` / `SmsInput` / `UrlInput`);
        `adapters` scores every input through each named adapter; `return_text` returns the model's text."""
        return await self._send(_classify_call(input, adapter, adapters, return_text))

    async def classify_email(
        self,
        raw: bytes | str,
        adapter: str | None = None,
        adapters: Sequence[str] | None = None,
        *,
        return_text: bool = False,
    ) -> ClassifyResponse:
        """Classify one raw RFC 822 message (e.g. the bytes of an .eml file) as the server parses it."""
        return await self._send(_classify_call(email_input(raw), adapter, adapters, return_text))

    async def iter_classify(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        adapter: str | None = None,
        progress: bool = False,
    ) -> AsyncIterator[ClassifyResult]:
        """Classify any number of texts in requests of `batch_size`, yielding results in input order."""
        with _progress_bar(texts, progress) as bar:
            for offset, chunk in _chunks(texts, batch_size):
                results = _rebase(await self.classify(chunk, adapter=adapter), offset)
                bar.update(len(chunk))
                for result in results:
                    yield result

    async def classify_many(
        self,
        texts: Iterable[str],
        batch_size: int = DEFAULT_BATCH_SIZE,
        adapter: str | None = None,
        progress: bool = False,
    ) -> list[ClassifyResult]:
        """`iter_classify` collected into a list."""
        it = self.iter_classify(texts, batch_size=batch_size, adapter=adapter, progress=progress)
        return [result async for result in it]

    async def feedback(
        self, request_id: str, labels: FeedbackLabels, adapter: str | None = None
    ) -> FeedbackResponse:
        """True labels for a served classify answer (`request_id` is its `id`); idempotent."""
        return await self._send(_feedback_call(request_id, labels, adapter))

    async def list_adapters(self) -> list[AdapterInfo]:
        return await self._send(_LIST_ADAPTERS)

    async def load_adapter(self, path: str, name: str | None = None, replace: bool = False) -> AdapterInfo:
        """Load a bundle directory (a path on the server's disk); admin. `replace`: swap the weights of an
        adapter already loaded under `name` without a gap."""
        return await self._send(_load_adapter_call(str(path), name, replace))

    async def unload_adapter(self, name: str) -> None:
        """Unload an adapter; admin."""
        return await self._send(_unload_adapter_call(name))

    async def health(self) -> HealthStatus:
        return await self._send(_HEALTH)

    async def ready(self) -> bool:
        """True when the engine is up and its golden checks pass (503 answers False)."""
        return await self._send(_READY)

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.5) -> None:
        """Poll `/ready` until it answers ready; raise NotReadyError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await self.ready():
                    return
            except errors.ConnectionError:
                pass  # server not listening yet
            if time.monotonic() >= deadline:
                raise self._not_ready_after(timeout)
            await asyncio.sleep(interval)

    async def explain(
        self,
        input: ClassifyInput,
        adapter: str | None = None,
        *,
        granularity: str = "word",
        max_evals: int | None = None,
        html: bool = False,
        timeout: float | None = None,
        return_text: bool = False,
    ) -> ExplainResponse:
        """SHAP attributions of one text (`html=True` adds a self-contained HTML page); waits up to 600 s."""
        return await self._send(
            _explain_call(input, adapter, granularity, max_evals, html, timeout, return_text)
        )

    async def kserve_explain(
        self,
        model: str,
        input: ClassifyInput,
        *,
        granularity: str = "word",
        max_evals: int | None = None,
        html: bool = False,
        timeout: float | None = None,
        return_text: bool = False,
    ) -> KServeExplainResponse:
        """KServe V1 `POST /v1/models/{model}:explain` for one text."""
        return await self._send(
            _kserve_explain_call(model, input, granularity, max_evals, html, timeout, return_text)
        )

    async def probe(
        self, input: ClassifyInput, adapter: str | None = None, *, return_text: bool = False
    ) -> ProbeResponse:
        """Per-layer probe outputs and logit-lens P(phishing) of one text (`POST /v1/probe`)."""
        return await self._send(_probe_call(input, adapter, return_text))

    async def predict(
        self, model: str, instances: Sequence[Any], *, return_text: bool = False
    ) -> KServePredictResponse:
        """KServe V1 `POST /v1/models/{model}:predict`."""
        return await self._send(_predict_call(model, instances, return_text))

    async def model_info(self, model: str) -> KServeModel:
        """KServe V1 `GET /v1/models/{model}`."""
        return await self._send(_model_info_call(model))

    async def metrics(self) -> str:
        """The Prometheus exposition text of `/metrics`."""
        return await self._send(_METRICS)

    async def drift(self) -> list[AdapterDriftInfo]:
        """Drift state per loaded adapter (`GET /v1/drift`)."""
        return (await self._send(_DRIFT)).data

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncPhishlensClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
