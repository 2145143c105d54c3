"""Shared benchmark helpers: texts, a real server on a free port, the machine's matmul rate."""

from __future__ import annotations

import contextlib
import platform
import socket
import threading
import time
from collections.abc import Iterator, Sequence


def bench_texts(n: int, seed: int = 7) -> list[str]:
    """Mixed SMS and e-mail test rows from the corpora (half each); synthetic if the data is absent."""
    try:
        from phishlens.training.data.splits import load_splits

        s = load_splits()
        half = n // 2
        sms = s.sample("test", "sms_uci", per_label=(half + 1) // 2, seed=seed)[:half]
        mail = s.sample("test", "email_spamassassin", per_label=(n - half + 1) // 2, seed=seed)[: n - half]
        texts = [r.text for pair in zip(sms, mail) for r in pair]
        if len(texts) == n:
            return texts
    except Exception:  # no corpora: still runnable, the table says which texts it used
        pass
    base = [
        "Your account has been suspended. Verify your identity at http://secure-login.example.com now.",
        "Hi Tom, the budget review moved to Friday 10am; slides are in the shared folder. Thanks, Ana",
    ]
    return [base[i % 2] + f" ({i})" for i in range(n)]


def corpus_rows(
    n: int, styles: Sequence[str], max_chars: int | None = None, seed: int = 7, split: str = "test"
) -> list[tuple[str, str]]:
    """`n` (text, true label) rows of the given styles from one split of the real corpora, at most `max_chars`
    characters each, round-robin over the (style, label) cells present (each shuffled); repeats when fewer."""
    import random

    from phishlens.training.data.splits import load_splits

    rows = [
        r
        for r in load_splits().rows(split)
        if r.style in styles and (max_chars is None or len(r.text) <= max_chars)
    ]
    if not rows:
        raise SystemExit(f"no {split} rows of style {list(styles)} with at most {max_chars} characters")
    rng = random.Random(seed)
    cells: dict[tuple[str, str], list] = {}
    for r in rows:
        cells.setdefault((r.style, r.label), []).append(r)
    pools = [cells[k] for k in sorted(cells)]
    for pool in pools:
        rng.shuffle(pool)
    out = []
    for i in range(n):
        pool = pools[i % len(pools)]
        r = pool[(i // len(pools)) % len(pool)]
        out.append((r.text, r.label))
    return out


def held_out_rows(splits, sources: Sequence[str], per_label: int) -> dict[str, list]:
    """Each held-out source on its own: its first ``per_label`` rows per label by uid, from every split (the
    screening benchmarks' view of an unseen source)."""
    rows = {}
    for s in sources:
        recs = [r for sp in ("train", "validation", "test") for r in splits.rows(sp, [s])]
        pick = []
        for lab in ("phishing", "legitimate"):
            pick += sorted((r for r in recs if r.label == lab), key=lambda r: r.uid)[:per_label]
        rows[s] = pick
    return rows


def matmul_gflops(n: int = 1024, repeat: int = 20) -> float:
    """Measured torch fp32 matmul rate on this machine (GFLOP/s), all intra-op threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * n**3 * repeat / (time.perf_counter() - t) / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(settings) -> Iterator[str]:
    """A real uvicorn server (one worker) in a thread; yields its base URL once /ready answers."""
    import uvicorn

    from phishlens.clients import PhishlensClient
    from phishlens.server.app import create_app
    from phishlens.server.main import uvicorn_config

    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{settings.port}"
    try:
        with PhishlensClient(url, timeout=600) as c:
            c.wait_ready(timeout=900)
        yield url
    finally:
        server.should_exit = True
        th.join(60)


def machine() -> str:
    import os

    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def percentile(xs: Sequence[float], q: float) -> float:
    ys = sorted(xs)
    k = min(len(ys) - 1, max(0, int(round(q / 100 * (len(ys) - 1)))))
    return ys[k]
