"""Planted-signal data and tiny trained bundles for tests (real training code, tiny random bases)."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

from phishlens.training.data.records import Record, text_uid

WORDS = (
    "the a meeting lunch report invoice tomorrow please call office team project update schedule "
    "notes draft friday review budget plan thanks agenda slides client"
).split()
TRIGGER = "zebra"


def planted(
    n: int, trigger_means_phishing: bool = True, seed: int = 0, style: str = "sms", source: str = "synthetic"
) -> list[Record]:
    """Balanced rows where the word `zebra` decides the label (phishing, or legitimate if inverted)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 14))]
        y = i % 2
        has_trigger = (y == 1) if trigger_means_phishing else (y == 0)
        if has_trigger:
            words.insert(rng.randint(1, len(words)), TRIGGER)  # never first: " zebra" is one token form
        text = " ".join(words)
        label = "phishing" if y else "legitimate"
        out.append(Record(text, label, style, source, label, text_uid(f"{seed}:{i}:{text}")))  # type: ignore[arg-type]
    return out


def train_tiny_bundle(
    base_path: Path,
    out: Path,
    name: str,
    trigger_means_phishing: bool = True,
    epochs: float = 6.0,
    seed: int = 0,
    r: int = 8,
    fit_seed: int | None = None,
):
    """A tiny-llama adapter bundle that learned the planted rule (≈10-20 s on 2 cores). `fit_seed` (batch
    order, dropout) alone varies a refit of the same rows and initialisation."""
    from phishlens.training.commands.train import TrainConfig, train_bundle

    cfg = TrainConfig(
        name=name,
        base=str(base_path),
        mix="planted",
        max_text_tokens=32,
        lora={"r": r, "alpha": 2 * r, "dropout": 0.0, "top_layers": 2},
        fit={"lr": 5e-3, "epochs": epochs, "batch_size": 16}
        | ({} if fit_seed is None else {"seed": fit_seed}),
        seed=13 + seed,
    )
    train = planted(400, trigger_means_phishing, seed=seed)
    val = planted(80, trigger_means_phishing, seed=seed + 100)
    test = planted(80, trigger_means_phishing, seed=seed + 200)
    return train_bundle(
        cfg,
        out,
        ["tests"],
        records=(train, val),
        eval_sets={"sms_uci": test},
        seen_sources=["sms_uci"],
        progress=False,
    )


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread. Tiny models gain nothing from two, and on a busy 2-core host the
    OpenMP barrier of a two-thread pool spins while its other thread waits for a core (measured:
    a tiny-model training step took 3.5 s with 2 threads and 0.05 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
