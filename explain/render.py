"""Show an attribution: self-contained HTML, or ANSI colours for a terminal.

Standard library only (the CLI imports this module, and a client host need not have numpy or shap).
Both take plain sequences, so they render an `Attribution`, a wire response or a stored result alike.
Colour: red pushes towards phishing, blue towards legitimate; intensity is |value| / max |value|.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

_POS = (214, 39, 40)  # red: towards phishing
_NEG = (31, 119, 180)  # blue: towards legitimate


def _scale(attributions: Sequence[float]) -> float:
    m = max((abs(float(a)) for a in attributions), default=0.0)
    return m if m > 0 else 1.0


def _mix(value: float, scale: float) -> tuple[int, int, int]:
    """White blended towards red/blue by |value| / scale."""
    w = min(1.0, abs(value) / scale)
    rgb = _POS if value >= 0 else _NEG
    return tuple(round(255 + (c - 255) * w) for c in rgb)  # type: ignore[return-value]


def top_features(
    tokens: Sequence[str], attributions: Sequence[float], k: int = 5, sign: int = 1
) -> list[tuple[str, float]]:
    """The k features with the largest (sign=1) or most negative (sign=-1) attributions."""
    order = sorted(range(len(tokens)), key=lambda i: (-sign * float(attributions[i]), i))[:k]
    return [(tokens[i].strip(), float(attributions[i])) for i in order]


def render_html(
    tokens: Sequence[str],
    attributions: Sequence[float],
    *,
    prediction: float,
    base_value: float,
    title: str = "phishlens explanation",
    subtitle: str = "",
    top_k: int = 5,
) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external assets); tokens are escaped."""
    scale = _scale(attributions)
    spans = []
    for tok, a in zip(tokens, attributions):
        r, g, b = _mix(float(a), scale)
        spans.append(
            f'<span class="t" style="background:rgb({r},{g},{b})" title="{float(a):+.4f}">'
            f"{html.escape(tok)}</span>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{v:+.4f}</td></tr>"
        for t, v in top_features(tokens, attributions, top_k, 1)
        if v > 0
    )
    rows_neg = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{v:+.4f}</td></tr>"
        for t, v in top_features(tokens, attributions, top_k, -1)
        if v < 0
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
.text{{line-height:2;white-space:pre-wrap;border:1px solid #ddd;padding:1rem;border-radius:6px}}
.t{{border-radius:3px;padding:1px 0}} table{{border-collapse:collapse;margin-right:2rem;display:inline-table}}
td,th{{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}} .meta{{color:#555}}
.key span{{padding:0 6px;border-radius:3px}}
</style></head><body>
<h2>{html.escape(title)}</h2>
<p class="meta">{html.escape(subtitle)}</p>
<p class="meta">P(phishing) = <b>{prediction:.4f}</b> &nbsp; base value (all masked) = {base_value:.4f}
&nbsp; sum of attributions = {sum(float(a) for a in attributions):+.4f}</p>
<p class="key"><span style="background:rgb{_POS}">towards phishing</span>
<span style="background:rgb{_NEG};color:#fff">towards legitimate</span></p>
<div class="text">{"".join(spans)}</div>
<h3>Top features</h3>
<table><tr><th>towards phishing</th><th></th></tr>{rows}</table>
<table><tr><th>towards legitimate</th><th></th></tr>{rows_neg}</table>
</body></html>
"""


def render_terminal(
    tokens: Sequence[str],
    attributions: Sequence[float],
    *,
    prediction: float,
    base_value: float,
    color: bool = True,
    top_k: int = 5,
) -> str:
    """The text with each token's background coloured by its attribution (24-bit ANSI), then the top features.

    With ``color=False`` the text is printed plain and only the top-features list carries the values.
    """
    scale = _scale(attributions)
    if color:
        parts = []
        for tok, a in zip(tokens, attributions):
            r, g, b = _mix(float(a), scale)
            # dark text on the light end, white on saturated colours
            fg = "38;2;0;0;0" if (r + g + b) > 450 else "38;2;255;255;255"
            parts.append(f"\x1b[48;2;{r};{g};{b}m\x1b[{fg}m{tok}\x1b[0m")
        body = "".join(parts)
    else:
        body = "".join(tokens)
    lines = [
        body,
        "",
        f"P(phishing) = {prediction:.4f}   base value = {base_value:.4f}   "
        f"sum of attributions = {sum(float(a) for a in attributions):+.4f}",
    ]
    pos = [(t, v) for t, v in top_features(tokens, attributions, top_k, 1) if v > 0]
    neg = [(t, v) for t, v in top_features(tokens, attributions, top_k, -1) if v < 0]
    if pos:
        lines.append("towards phishing:   " + ", ".join(f"{t!r} {v:+.3f}" for t, v in pos))
    if neg:
        lines.append("towards legitimate: " + ", ".join(f"{t!r} {v:+.3f}" for t, v in neg))
    return "\n".join(lines)
