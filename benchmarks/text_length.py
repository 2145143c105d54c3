"""How much of each text the classifier reads: a screen for the prompt's ``max_text_tokens`` (issue 13, v15).

    python benchmarks/text_length.py [--mix configs/mixes/generalist-v4-links.toml] [--per-label 200]
                                     [--tokens 128,256,512,0]

Two tables. First, the share of texts longer than each cut (base tokenizer's tokens of the text alone),
for the mix's training e-mails and every held-out source. Second, the TF-IDF peer trained and scored on
texts cut exactly as the adapter's prompt cuts them (the base's tokenizer, head and tail kept:
``PromptEncoder``; 0 = the whole text), F1 / FPR / ROC-AUC per held-out source at the peer's own
validation threshold. If the peer loses F1 when it reads only what the adapter reads, the adapter's cut
costs it the same evidence. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from _common import held_out_rows

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mix", default="configs/mixes/generalist-v4-links.toml")
    ap.add_argument("--base", default="smollm2")
    ap.add_argument("--per-label", type=int, default=200)
    ap.add_argument("--tokens", default="128,256,512,0", help="text-token cuts; 0 = the whole text")
    args = ap.parse_args()

    from phishlens.training.contract.base_models import resolve_base
    from phishlens.training.contract.prompt import PromptEncoder
    from phishlens.training.contract.style import detect_style
    from phishlens.training.data.mixes import build_mix, load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.generalization import held_out_of
    from phishlens.training.evaluation.metrics import binary_metrics
    from phishlens.training.model.loading import load_tokenizer
    from phishlens.training.model.tfidf import fit_tfidf

    tok = load_tokenizer(resolve_base(args.base))
    cuts = [int(c) for c in args.tokens.split(",")]
    splits = load_splits()
    spec = load_mix(REPO / args.mix if not Path(args.mix).is_absolute() else args.mix)
    mix = build_mix(spec, splits)
    held = held_out_of([spec])
    rows = held_out_rows(splits, held, args.per_label)

    n_ids: dict[str, int] = {}

    def length(text: str) -> int:
        if text not in n_ids:
            n_ids[text] = len(tok.encode(text, add_special_tokens=False))
        return n_ids[text]

    groups = [("training e-mails", [r for r in mix.train if detect_style(r.text) == "email"])]
    groups += [(s, rows[s]) for s in held]
    shown = [c for c in cuts if c]
    print("| texts | n | median tokens | " + " | ".join(f"> {c}" for c in shown) + " |")
    print("|---|---:|---:|" + "---:|" * len(shown))
    for name, rs in groups:
        lens = np.array([length(r.text) for r in rs])
        cells = " | ".join(f"{(lens > c).mean():.2f}" for c in shown)
        print(f"| {name} | {lens.size} | {np.median(lens):.0f} | {cells} |", flush=True)

    print()
    print("| text tokens read | peer threshold | " + " | ".join(f"`{s}` F1 / FPR / AUC" for s in held) + " |")
    print("|---|---:|" + "---:|" * len(held))
    for c in cuts:
        enc = PromptEncoder(tok, "{text}", c) if c else None

        def cut(rs: list, enc: PromptEncoder | None = enc) -> list:
            if enc is None:
                return list(rs)
            # exactly the text ids the adapter's prompt keeps (the bare "{text}" template has no frame)
            return [dataclasses.replace(r, text=tok.decode(enc.encode(r.text).ids)) for r in rs]

        peer = fit_tfidf(cut(mix.train), cut(mix.validation), name=f"{spec.name}@{c}", seed=spec.seed)
        cells = []
        for s in held:
            y = np.array([r.y for r in rows[s]])
            m = binary_metrics(y, peer.score([r.text for r in cut(rows[s])]), peer.threshold)
            fpr = "–" if m["fpr"] is None else f"{m['fpr']:.2f}"
            auc = "–" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
            cells.append(f"{m['f1']:.3f} / {fpr} / {auc}")
        print(f"| {c or 'all'} | {peer.threshold:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
