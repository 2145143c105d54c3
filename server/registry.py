"""The adapter registry: which bundles are loaded, under which names, and safe hot load / unload.

Requests resolve their adapters ONCE at admission (`lease`) and keep those entries until they finish,
so a concurrent unload or reload never makes a request run with another adapter: unload removes the
name from the map first (new requests get 404), waits until the leases on the old entry are returned,
and only then asks the backend to forget it (STYLE.md H6). A replace (`load(..., replace=True)`) loads the
new weights into the engine's spare slot first and then swaps the map entry in one step, so no request
sees the name missing: those admitted before the swap finish on the old weights, later ones get the new.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from phishlens.training.contract.bundle import Bundle, BundleError, Manifest, load_bundle
from phishlens.training.contract.pipeline import EmailLimits, Pipeline, UnknownPipeline, get_pipeline
from phishlens.training.contract.prompt import PromptEncoder, PromptError, label_token_ids

from .backends.base import AdapterHandle, Backend, BackendError
from .bundle_fit import check_adapter_fits
from .bundle_snapshot import discard, snapshot_bundle
from .errors import AdapterNotFound, BackendFailure, BadRequest, PhishlensError
from .metrics import Metrics
from .settings import Settings

logger = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(eq=False)
class AdapterEntry:
    """One loaded adapter: backend handle, validated bundle, its prompt encoder and input pipeline."""

    name: str
    handle: AdapterHandle
    bundle: Bundle
    encoder: PromptEncoder
    pipeline: Pipeline
    loaded_at: float = field(default_factory=time.time)
    refs: int = 0
    retired: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def manifest(self) -> Manifest:
        return self.bundle.manifest

    @property
    def sha256(self) -> str:
        return self.bundle.sha256


class AdapterRegistry:
    """name → AdapterEntry, with allow-listed roots, a cap, per-name locks and lease counting."""

    def __init__(self, backend: Backend, settings: Settings, metrics: Metrics | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.roots = [Path(r).resolve() for r in settings.adapter_roots]
        self.default_name = settings.default_adapter
        self.cap = min(settings.max_loaded_adapters, backend.max_adapters)
        self._entries: dict[str, AdapterEntry] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._ids = itertools.count(1)
        self._reserved = 0  # loads of new names past the cap check but not yet in the map
        self._swapping = 0  # replacements loading: each holds an engine slot beside its old entry
        self._retiring = 0  # entries out of the map whose engine copy waits for their requests to finish
        self._staging: Path | None = None  # made on the first load (registries that load nothing leave none)

    @property
    def staging(self) -> Path:
        """This registry's own folder of private bundle copies (removed at close)."""
        if self._staging is None:
            parent = self.settings.adapter_staging_dir or Path(tempfile.gettempdir())
            parent.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix="phishlens-bundles-", dir=parent)).resolve()
        return self._staging

    # -- lookup -------------------------------------------------------------------------------------
    def get(self, name: str | None) -> AdapterEntry:
        """The entry serving `name` (None: the default adapter); 404 when none is loaded."""
        key = self.default_name if name is None else name
        entry = self._entries.get(key)
        if entry is None:
            if name is None:
                raise AdapterNotFound(
                    f"no adapter named in the request and the default adapter {key!r} is not loaded"
                )
            raise AdapterNotFound(f"adapter {_short(key)!r} is not loaded; loaded: {sorted(self._entries)}")
        return entry

    def list(self) -> list[AdapterEntry]:
        return [self._entries[k] for k in sorted(self._entries)]

    def __len__(self) -> int:
        return len(self._entries)

    @contextmanager
    def lease(self, names: Sequence[str | None]) -> Iterator[list[AdapterEntry]]:
        """Resolve each name once and hold the entries (same order) until the block exits."""
        entries = [self.get(n) for n in names]  # no await between lookup and ref-count: atomic
        for e in entries:
            e.refs += 1
        try:
            yield entries
        finally:
            for e in entries:
                e.refs -= 1
                if e.retired and e.refs == 0:
                    e._idle.set()

    # -- paths --------------------------------------------------------------------------------------
    def resolve_path(self, ref: str) -> Path:
        """A bare name → ``<root>/<name>`` (first root holding it); a path must resolve inside a root."""
        if not ref or "\x00" in ref:
            raise BadRequest("adapter path is empty or contains NUL")
        p = Path(ref).expanduser()
        if ".." in p.parts:
            raise BadRequest(
                f"adapter path {_short(ref)!r} contains '..'; give a name or a path inside the adapter roots"
            )
        if p.is_absolute():
            candidates = [p]
        else:
            candidates = [root / p for root in self.roots]
        for cand in candidates:
            real = cand.resolve()  # follows symlinks: a link out of the roots is refused here
            if not any(real == root or real.is_relative_to(root) for root in self.roots):
                raise BadRequest(f"adapter path {_short(ref)!r} is outside the allowed adapter roots")
            if real.is_dir():
                return real
        raise BadRequest(f"no bundle {_short(ref)!r} under the adapter roots")

    # -- load / unload --------------------------------------------------------------------------------
    async def open(self) -> None:
        """Load the start-up adapters. One that fails (corrupt, missing, refused) is logged with the reason
        and skipped, so the server starts with the rest; /ready reports 503 while none is loaded."""
        for ref in self.settings.adapters:
            try:
                await self.load(ref)
            except PhishlensError as e:
                logger.error("adapter %s not loaded at start-up: %s", _short(ref), e.message)

    async def load(self, ref: str, name: str | None = None, replace: bool = False) -> AdapterEntry:
        """Load the bundle `ref` as `name`. A loaded `name` is refused unless `replace`: then the new
        weights take its place atomically and the old entry is retired once its requests finish."""
        source = self.resolve_path(ref)
        # read once, without following links, into a private copy: what is validated is what is served
        path = await asyncio.to_thread(
            snapshot_bundle,
            source,
            self.roots,
            self.staging,
            self.settings.max_bundle_bytes,
            self.settings.max_bundle_files,
        )
        try:
            return await self._load(path, name, replace)
        except BaseException:
            discard(path, self.staging)
            raise

    async def _load(self, path: Path, name: str | None, replace: bool) -> AdapterEntry:
        try:
            bundle = await asyncio.to_thread(load_bundle, path, self.backend.base_sha256)
        except BundleError as e:
            raise BadRequest(str(e)) from e
        base_path = self.backend.base_path
        if base_path:  # dtypes and shapes against the base, from the header only (fakes have none)
            try:
                await asyncio.to_thread(
                    check_adapter_fits, path, Path(base_path) / "config.json", bundle.manifest.lora.r
                )
            except BundleError as e:
                raise BadRequest(str(e)) from e
        pipeline = self._pipeline(bundle)
        if bundle.manifest.lora.r > self.settings.max_lora_rank:
            raise BadRequest(
                f"bundle {bundle.manifest.name}: LoRA rank {bundle.manifest.lora.r} is above this "
                f"server's max_lora_rank {self.settings.max_lora_rank} (PHISHLENS_MAX_LORA_RANK)"
            )
        name = name or bundle.manifest.name
        if not NAME_RE.match(name):
            raise BadRequest(f"adapter name {_short(name)!r} must match {NAME_RE.pattern}")
        if name == "auto":  # services/routing.py: requests naming "auto" are routed by style
            raise BadRequest(
                "adapter name 'auto' is reserved for style routing; load the bundle under another "
                'name (POST /v1/adapters with "name")'
            )
        async with self._locks[name]:
            old = self._entries.get(name)
            if old is not None and not replace:
                raise BadRequest(
                    f"adapter {name!r} is already loaded; unload it first, or load with replace=true "
                    "to swap its weights without a gap"
                )
            in_engine = len(self._entries) + self._reserved + self._swapping + self._retiring
            if old is None and len(self._entries) + self._reserved >= self.cap:
                raise BadRequest(f"adapter cap reached ({self.cap} loaded); unload one first")
            if in_engine >= self.backend.max_adapters:
                raise BadRequest(
                    f"no free engine slot for {name!r}: {in_engine} of {self.backend.max_adapters} in use "
                    "(an adapter replaced or unloaded is still finishing its requests); retry shortly"
                )
            counter = "_swapping" if old is not None else "_reserved"
            setattr(self, counter, getattr(self, counter) + 1)
            try:
                encoder = self._encoder(bundle)
                handle = AdapterHandle(next(self._ids), name, bundle.path)
                try:
                    await self.backend.add_adapter(handle)
                except BackendError as e:
                    raise BackendFailure(f"engine refused adapter {name!r}: {e}") from e
                entry = AdapterEntry(name, handle, bundle, encoder, pipeline)
                self._entries[name] = entry  # the swap: one step, no await between old and new
            finally:
                setattr(self, counter, getattr(self, counter) - 1)
            if old is not None:
                await self._retire(old)
        self._gauge()
        logger.info(
            "%s adapter %s (id %d, sha256 %s) from %s",
            "replaced" if old is not None else "loaded",
            name,
            handle.adapter_id,
            bundle.sha256[:12],
            bundle.path,
        )
        return entry

    async def unload(self, name: str) -> AdapterEntry:
        async with self._locks[name]:
            entry = self._entries.pop(name, None)  # first: no new request can resolve it
            if entry is None:
                raise AdapterNotFound(f"adapter {_short(name)!r} is not loaded")
            self._gauge()
            await self._retire(entry)
        if self.metrics:
            self.metrics.forget_adapter(name)
        logger.info("unloaded adapter %s (id %d)", name, entry.handle.adapter_id)
        return entry

    async def _retire(self, entry: AdapterEntry) -> None:
        """Out of the map already: wait for the requests holding `entry`, then free its engine slot. Shielded:
        an admin request cancelled meanwhile (shutdown, a dropped connection) must not strand the engine copy;
        until it is removed it counts against the engine's slots (`_retiring`)."""
        entry.retired = True
        self._retiring += 1

        async def finish() -> None:
            try:
                if entry.refs:
                    await entry._idle.wait()  # requests already admitted finish with this adapter
                try:
                    await self.backend.remove_adapter(entry.handle)
                except BackendError as e:  # the name is gone (or serves new weights) either way; report it
                    logger.warning(
                        "engine failed to remove adapter %s (id %d): %s",
                        entry.name,
                        entry.handle.adapter_id,
                        e,
                    )
                discard(entry.bundle.path, self.staging)
            finally:
                self._retiring -= 1

        await asyncio.shield(finish())

    async def close(self) -> None:
        for name in list(self._entries):
            await self.unload(name)
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    def _encoder(self, bundle: Bundle) -> PromptEncoder:
        m = bundle.manifest
        tok = self.backend.tokenizer
        try:
            ids = label_token_ids(tok, [lab.word for lab in m.labels])
            if ids != m.label_token_ids:
                raise BadRequest(
                    f"bundle {m.name}: label token ids {m.label_token_ids} do not match this "
                    f"server's tokenizer ({ids})"
                )
            return PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
        except PromptError as e:
            raise BadRequest(f"bundle {m.name}: {e}") from e

    def _pipeline(self, bundle: Bundle) -> Pipeline:
        """The input pipeline the bundle was trained with (this server's e-mail caps); refused if unknown."""
        ref = bundle.manifest.pipeline
        try:
            pipeline = get_pipeline(ref.name, ref.version)
        except UnknownPipeline as e:
            raise BadRequest(f"bundle {bundle.manifest.name}: {e}") from e
        s = self.settings
        limits = EmailLimits(s.email_max_parts, s.email_max_depth, s.email_max_decoded_bytes)
        return pipeline.with_limits(limits)

    def _gauge(self) -> None:
        if self.metrics:
            self.metrics.adapters_loaded.set(len(self._entries))


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "…"
