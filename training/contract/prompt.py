"""Prompt template and label tokens: the classification semantics shared by training and both backends.

Texts are tokenised here, once, by our code; backends receive token ids. That makes the HF and vLLM
backends see byte-identical inputs (parity) and makes the truncation policy exact: when the text is
longer than ``max_text_tokens`` we keep its head and its tail (phishing cues sit in both the opening
lines and the closing call to action) and report it.

A template may also name the text's style once (``{style}``: "e-mail", "SMS" or "URL"). The caller passes
the style it knows (a typed input's declared one); without it the style is detected from the text itself, so
training, evaluation and a plain-string request all see the same word for the same text, and the frozen-layer
cache (keyed by text) stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .style import Style, detect_style

TEXT_SLOT = "{text}"
STYLE_SLOT = "{style}"
# How a template names each style (issue 13's "the prompt: the style" lever).
STYLE_WORDS: dict[Style, str] = {"email": "e-mail", "sms": "SMS", "url": "URL"}
DEFAULT_TEMPLATE = (
    "Decide whether the message below is phishing (or spam) or legit.\n"
    "Message:\n{text}\n"
    "Answer (phishing or legit):"
)
# Label words as the model should continue the prompt; positive class first.
DEFAULT_LABEL_WORDS: tuple[str, str] = (" phishing", " legit")


class PromptError(ValueError):
    """The template or the label words do not fit the tokenizer."""


@dataclass(frozen=True)
class EncodedPrompt:
    ids: list[int]
    n_text_tokens: int  # text tokens kept
    n_text_tokens_in: int  # text tokens before truncation
    truncated: bool


def label_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """The single token id of each label word; refuse words that are not one token."""
    ids: list[int] = []
    for w in words:
        toks = tokenizer.encode(w, add_special_tokens=False)
        if len(toks) != 1:
            raise PromptError(f"label word {w!r} is {len(toks)} tokens for this tokenizer; need exactly 1")
        ids.append(int(toks[0]))
    if len(set(ids)) != len(ids):
        raise PromptError(f"label words {list(words)!r} map to the same token")
    return ids


class PromptEncoder:
    """Wraps texts in the template and tokenises them with the head+tail truncation policy."""

    def __init__(
        self,
        tokenizer: Any,
        template: str = DEFAULT_TEMPLATE,
        max_text_tokens: int = 256,
        head_fraction: float = 0.5,
    ) -> None:
        check_template(template)
        if max_text_tokens < 2:
            raise PromptError("max_text_tokens must be >= 2")
        self.tokenizer = tokenizer
        self.template = template
        self.max_text_tokens = max_text_tokens
        self.head_fraction = head_fraction
        self.names_style = STYLE_SLOT in template
        # (prefix ids, suffix ids) per style when the template names the style; none otherwise.
        self._frames: dict[Style, tuple[list[int], list[int]]] = {
            style: self._frame_ids(template.replace(STYLE_SLOT, word))
            for style, word in (STYLE_WORDS.items() if self.names_style else ())
        }
        # The one frame of a template without a style slot (the e-mail frame otherwise).
        frame = self._frames["email"] if self.names_style else self._frame_ids(template)
        self.prefix_ids, self.suffix_ids = frame

    def _frame_ids(self, filled: str) -> tuple[list[int], list[int]]:
        prefix, suffix = filled.split(TEXT_SLOT)
        # The prefix carries the tokenizer's special tokens (BOS where the model wants one, e.g. Gemma).
        return (
            list(self.tokenizer.encode(prefix, add_special_tokens=True)),
            list(self.tokenizer.encode(suffix, add_special_tokens=False)),
        )

    def text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def frame(self, text: str, style: Style | None = None) -> tuple[list[int], list[int]]:
        """The (prefix, suffix) ids around ``text``: its declared style's, else its detected one's."""
        if not self.names_style:
            return self.prefix_ids, self.suffix_ids
        return self._frames[style or detect_style(text)]

    def encode(self, text: str, style: Style | None = None) -> EncodedPrompt:
        prefix_ids, suffix_ids = self.frame(text, style)
        ids = self.text_ids(text)
        n_in = len(ids)
        truncated = n_in > self.max_text_tokens
        if truncated:
            head = int(round(self.max_text_tokens * self.head_fraction))
            tail = self.max_text_tokens - head
            ids = ids[:head] + (ids[-tail:] if tail else [])
        return EncodedPrompt(prefix_ids + ids + suffix_ids, len(ids), n_in, truncated)

    def encode_many(self, texts: Sequence[str], style: Style | None = None) -> list[EncodedPrompt]:
        """Every text as one declared style (the masked variants of one input), or each as detected."""
        return [self.encode(t, style) for t in texts]


def check_template(template: str) -> None:
    """``{text}`` exactly once, ``{style}`` at most once; :class:`PromptError` otherwise."""
    if template.count(TEXT_SLOT) != 1:
        raise PromptError(f"template must contain {TEXT_SLOT} exactly once")
    if template.count(STYLE_SLOT) > 1:
        raise PromptError(f"template may contain {STYLE_SLOT} at most once")
