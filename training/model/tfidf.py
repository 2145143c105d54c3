"""The classical peer: TF-IDF + logistic regression, trained on the same mix as an adapter.

It shows how far a bag of n-grams goes on each domain, so the LLM adapters' cross-domain numbers have a
baseline. It trains in seconds, so it is never saved (no pickle anywhere in the project): retrain it on
demand with :func:`train_tfidf`.

Features: word 1-2 grams and character 3-5 grams (``char``, not ``char_wb``: URLs have no spaces),
sublinear tf, capped vocabularies. Very long texts keep their head and tail (``max_chars``), the same
policy the LLM prompt uses. The decision threshold maximises F1 on the mix's validation rows.

The vocabulary cap is ours (:func:`capped_vocabulary`), not sklearn's ``max_features``: sklearn keeps the most
frequent terms with an unstable argsort, so which of the thousands of terms tied at the cut are kept hangs on
the sort kernel (numpy build, CPU), and the same rows gave peers 0.01 F1 apart on two machines (session 20).
Ties are broken by the term itself, so the peer is the same everywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from phishlens.training.data.records import Record
from phishlens.training.evaluation.metrics import binary_metrics
from phishlens.training.model.calibration import choose_threshold

if TYPE_CHECKING:  # pragma: no cover
    from phishlens.training.data.mixes import MixData

ARCHITECTURE = "tfidf-logreg"


def head_tail(text: str, max_chars: int, head_fraction: float = 0.75) -> str:
    """``text`` if short enough, else its first and last characters (``max_chars`` in all)."""
    if len(text) <= max_chars:
        return text
    head = int(max_chars * head_fraction)
    return text[:head] + " … " + text[len(text) - (max_chars - head) :]


@dataclass
class TfidfPeer:
    """A fitted TF-IDF + logistic-regression classifier with the Scorer interface.

    ``peer(texts)`` returns P(phishing) per text; ``threshold`` is the validation-F1-optimal cut.
    """

    name: str
    vectorizer: Any  # sklearn FeatureUnion
    classifier: Any  # sklearn LogisticRegression
    threshold: float = 0.5
    seen_sources: tuple[str, ...] = ()
    max_chars: int = 4000
    info: dict[str, Any] = field(default_factory=dict)
    architecture: str = ARCHITECTURE

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.score(texts)

    def score(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty(0, dtype=float)
        x = self.vectorizer.transform([head_tail(t, self.max_chars) for t in texts])
        classes = list(self.classifier.classes_)
        return self.classifier.predict_proba(x)[:, classes.index(1)].astype(float)

    def predict(self, texts: list[str]) -> np.ndarray:
        return (self.score(texts) >= self.threshold).astype(int)


_ANALYZERS = (("word", (1, 2)), ("char", (3, 5)))


def term_counts(terms_per_text: list[list[str]]) -> tuple[Counter[str], Counter[str]]:
    """Each term's total count and its document frequency (how many texts have it)."""
    tf: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for terms in terms_per_text:
        tf.update(terms)
        df.update(set(terms))
    return tf, df


def capped_vocabulary(terms_per_text: list[list[str]], max_features: int, min_df: int) -> list[str]:
    """The ``max_features`` most frequent terms (total count) among those in ≥ ``min_df`` texts; ties broken
    by the term, so the choice does not depend on a sort kernel."""
    tf, df = term_counts(terms_per_text)
    kept = [t for t in tf if df[t] >= min_df]
    kept.sort(key=lambda t: (-tf[t], t))
    return sorted(kept[:max_features])


def _fit_vectorizer(texts: list[str], max_word_features: int, max_char_features: int) -> tuple[Any, Any]:
    """The fitted word + char TF-IDF union on ``texts``, each vocabulary capped by :func:`capped_vocabulary`
    (min_df 2, or 1 where 2 leaves a vocabulary empty on tiny sets), and ``texts``' feature matrix."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    caps = {"word": max_word_features, "char": max_char_features}
    parts = []
    for analyzer, ngrams in _ANALYZERS:
        opts = {"analyzer": analyzer, "ngram_range": ngrams, "lowercase": True}
        analyze = TfidfVectorizer(**opts).build_analyzer()
        terms = [analyze(t) for t in texts]
        vocab = capped_vocabulary(terms, caps[analyzer], 2) or capped_vocabulary(terms, caps[analyzer], 1)
        if not vocab:
            raise ValueError(f"TF-IDF peer: no {analyzer} terms in the training texts")
        vec = TfidfVectorizer(**opts, vocabulary=vocab, sublinear_tf=True, dtype=np.float32)
        parts.append((analyzer, vec, vec.fit_transform(texts)))
    union = FeatureUnion([(name, vec) for name, vec, _ in parts])
    return union, hstack([x for _, _, x in parts]).tocsr()


def fit_tfidf(
    train: list[Record],
    validation: list[Record] | None = None,
    *,
    name: str = "tfidf",
    seen_sources: tuple[str, ...] | None = None,
    C: float = 4.0,
    seed: int = 13,
    max_word_features: int = 50_000,
    max_char_features: int = 100_000,
    max_chars: int = 4000,
    max_fpr: float | None = None,
) -> TfidfPeer:
    """Fit the peer on ``train`` records; tune the threshold on ``validation`` (0.5 when absent/empty) by
    the adapters' rule (`choose_threshold`, with the same ``max_fpr``), so peer and adapter compare fairly."""
    from sklearn.linear_model import LogisticRegression

    y = np.fromiter((r.y for r in train), dtype=int, count=len(train))
    if len(train) == 0 or y.min() == y.max():
        raise ValueError("TF-IDF peer needs training rows of both labels")
    texts = [head_tail(r.text, max_chars) for r in train]
    vec, x = _fit_vectorizer(texts, max_word_features, max_char_features)
    clf = LogisticRegression(
        C=C, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=seed
    )
    clf.fit(x, y)
    if seen_sources is None:
        seen_sources = tuple(sorted({r.source for r in train}))
    peer = TfidfPeer(
        name=name,
        vectorizer=vec,
        classifier=clf,
        seen_sources=tuple(seen_sources),
        max_chars=max_chars,
        info={"n_train": len(train), "n_features": int(x.shape[1]), "C": C, "seed": seed},
    )
    if validation:
        yv = np.fromiter((r.y for r in validation), dtype=int, count=len(validation))
        pv = peer.score([r.text for r in validation])
        peer.threshold = choose_threshold(pv, yv, max_fpr)
        peer.info["max_fpr"] = max_fpr
        peer.info["validation"] = binary_metrics(yv, pv, peer.threshold)
        peer.info["n_validation"] = len(validation)
    return peer


def train_tfidf(mix_data: MixData, **kwargs: Any) -> TfidfPeer:
    """Train the peer on a mix's train rows, threshold tuned on its validation rows.

    Its ``seen_sources`` are the mix's sources (``mix_data.spec.sources``).
    """
    spec = mix_data.spec
    kwargs.setdefault("seed", getattr(spec, "seed", 13))
    return fit_tfidf(
        list(mix_data.train),
        list(mix_data.validation),
        name=spec.name,
        seen_sources=tuple(spec.sources),
        **kwargs,
    )
