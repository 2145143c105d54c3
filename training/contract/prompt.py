"""Prompt template and label tokens: the classification semantics shared by training and both backends.

Texts are tokenised here, once, by our code; backends receive token ids. That makes the HF and vLLM
backends see byte-identical inputs (parity) and makes the truncation policy exact: when the text is
longer than ``max_text_tokens`` we keep its head and its tail (phishing cues sit in both the opening
lines and the closing call to action) and report it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TEXT_SLOT = "{text}"
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
        if template.count(TEXT_SLOT) != 1:
            raise PromptError(f"template must contain {TEXT_SLOT} exactly once")
        if max_text_tokens < 2:
            raise PromptError("max_text_tokens must be >= 2")
        self.tokenizer = tokenizer
        self.template = template
        self.max_text_tokens = max_text_tokens
        self.head_fraction = head_fraction
        prefix, suffix = template.split(TEXT_SLOT)
        # The prefix carries the tokenizer's special tokens (BOS where the model wants one, e.g. Gemma).
        self.prefix_ids: list[int] = list(tokenizer.encode(prefix, add_special_tokens=True))
        self.suffix_ids: list[int] = list(tokenizer.encode(suffix, add_special_tokens=False))

    def text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, text: str) -> EncodedPrompt:
        ids = self.text_ids(text)
        n_in = len(ids)
        truncated = n_in > self.max_text_tokens
        if truncated:
            head = int(round(self.max_text_tokens * self.head_fraction))
            tail = self.max_text_tokens - head
            ids = ids[:head] + (ids[-tail:] if tail else [])
        return EncodedPrompt(self.prefix_ids + ids + self.suffix_ids, len(ids), n_in, truncated)

    def encode_many(self, texts: Sequence[str]) -> list[EncodedPrompt]:
        return [self.encode(t) for t in texts]
