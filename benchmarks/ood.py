"""What the per-result OOD flag costs on the request path: /v1/classify with and without it, side by side.

    python benchmarks/ood.py [--backend vllm|hf] [--adapter default] [--singles 40] [--batches 6] [--batch 8]

One real uvicorn server (the app factory, the adapter's bundle with its drift reference), drift off so
only the request path is measured. Requests alternate between the two paths on the same server, so
machine load hits both equally: "off" is the classify service without its OOD step, "on" with it (one
MiniLM pass per distinct text + a kNN against the adapter's reference). Every text is sent once (a
repeated prompt would hit vLLM's prefix cache). Prints a table: latency per request (p50 / p90), the
ratio on/off, and the cost of the OOD step alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_texts, free_port, machine, percentile  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--adapter", default="default")
    ap.add_argument("--singles", type=int, default=40, help="single-text requests per path")
    ap.add_argument("--batches", type=int, default=6, help="batch requests per path")
    ap.add_argument("--batch", type=int, default=8, help="texts per batch request")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    import uvicorn

    from phishlens.clients import PhishlensClient
    from phishlens.server.app import create_app
    from phishlens.server.main import uvicorn_config
    from phishlens.server.services.ood import OodService
    from phishlens.server.settings import Settings

    n_single, n_batch = 2 * args.singles, 2 * args.batches * args.batch
    pool = bench_texts(n_single + n_batch + 2 * args.batch)
    singles, batched, warm = pool[:n_single], pool[n_single : n_single + n_batch], pool[n_single + n_batch :]
    settings = Settings(
        backend=args.backend,
        adapters=[args.adapter],
        default_adapter=args.adapter,
        port=free_port(),
        max_queue=4096,
        drift_enabled=False,
        explain_warmup=False,
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{settings.port}"
    try:
        with PhishlensClient(url, timeout=600) as c:
            c.wait_ready(timeout=900)
            service = app.state.runtime.classify
            ood = service.ood or OodService(settings)
            paths = {"off": None, "on": ood}

            def timed(path: str, texts: list[str]) -> float:
                service.ood = paths[path]
                t = time.perf_counter()
                r = c.classify(texts)
                dt = time.perf_counter() - t
                assert (r.data[0].ood is None) == (path == "off")
                return dt

            timed("on", warm[: args.batch])  # loads MiniLM and the reference; warms the engine too
            timed("off", warm[args.batch :])
            lat: dict[tuple[str, str], list[float]] = {}
            for k, text in enumerate(singles):  # alternate, and alternate which path goes first
                path = ("off", "on")[(k + k // 2) % 2]
                lat.setdefault(("single", path), []).append(timed(path, [text]))
            chunks = [batched[i : i + args.batch] for i in range(0, len(batched), args.batch)]
            for k, ch in enumerate(chunks):
                path = ("off", "on")[(k + k // 2) % 2]
                lat.setdefault((f"batch of {args.batch}", path), []).append(timed(path, ch))
            # the OOD step alone, in process, on texts the server has not seen
            step = []
            for text in pool[: args.singles]:
                with service.registry.lease([None]) as (entry,):
                    t = time.perf_counter()
                    ood.assess([(entry, text)])
                    step.append(time.perf_counter() - t)
    finally:
        server.should_exit = True
        th.join(60)

    print(
        f"\nmachine: {machine()}; backend {args.backend}, adapter {args.adapter}; drift off; "
        f"{args.singles} single and {args.batches} batch requests per path, alternating on one server"
    )
    print("\n| request | off p50 ms | on p50 ms | p50 ratio | off p90 ms | on p90 ms | p90 ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("single", f"batch of {args.batch}"):
        off, on = lat[(kind, "off")], lat[(kind, "on")]
        m_off, m_on = statistics.median(off), statistics.median(on)
        p_off, p_on = percentile(off, 90), percentile(on, 90)
        print(
            f"| {kind} | {m_off * 1000:.0f} | {m_on * 1000:.0f} | {m_on / m_off:.2f}x | {p_off * 1000:.0f} | "
            f"{p_on * 1000:.0f} | {p_on / p_off:.2f}x |"
        )
    print(
        f"\nOOD step alone (one text, MiniLM + kNN, in process): "
        f"p50 {statistics.median(step) * 1000:.1f} ms, p90 {percentile(step, 90) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
