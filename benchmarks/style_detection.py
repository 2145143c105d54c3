"""Style detection (plain strings → email / sms / url) on the held-out test rows of every source.

    python benchmarks/style_detection.py

Prints accuracy per source for the training-form text (e-mails with their ``Subject:`` line) and, for
e-mail sources, for the body alone (a user pasting only the body), and the share of rows whose training text,
sent as a plain string, reaches the model unchanged (style detected, pipeline applied again). The README's
"Inputs" section quotes it.
"""

from __future__ import annotations

from collections import Counter


def main() -> None:
    from phishlens.training.contract.pipeline import PIPELINE, split_layout
    from phishlens.training.contract.style import detect_style
    from phishlens.training.data.splits import load_splits

    ss = load_splits()
    print("| source | style | test rows | accuracy | body only | same text | detected as (errors) |")
    print("|---|---|---|---|---|---|---|")
    total = Counter()
    for source, parts in ss.by_source.items():
        rows = parts["test"]
        if not rows:
            continue
        style = rows[0].style
        got = [detect_style(r.text) for r in rows]
        ok = sum(g == style for g in got)
        total["n"] += len(rows)
        total["ok"] += ok
        body = "–"
        if style == "email":
            bodies = [split_layout(r.text)[1] for r in rows]
            body = f"{sum(detect_style(b) == 'email' for b in bodies) / len(rows):.3f}"
        errors = dict(Counter(g for g in got if g != style))
        same = sum(PIPELINE.prepare(r.text).text == r.text for r in rows) / len(rows)
        acc = ok / len(rows)
        print(f"| {source} | {style} | {len(rows)} | {acc:.3f} | {body} | {same:.3f} | {errors or ''} |")
    print(f"| **all** | | {total['n']} | {total['ok'] / total['n']:.3f} | | | |")


if __name__ == "__main__":
    main()
