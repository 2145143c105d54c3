"""What callers send → what each adapter's model sees, through that adapter's input pipeline.

The one place serving calls the pipeline (phishlens.training.contract.pipeline, DESIGN.md §3a): the
classify, explain and probe services hand their inputs here after leasing the adapters, so every adapter
gets exactly the pipeline (name, version) its manifest names. Pipeline errors become the API's errors:
a cap → 413, an input with nothing to classify → 422, each naming the input's index.
"""

from __future__ import annotations

from collections.abc import Sequence

from phishlens.training.contract.pipeline import InputError, InputItem, InputTooLarge, Prepared

from ..errors import PayloadTooLarge, ValidationFailed
from ..registry import AdapterEntry
from ..settings import Settings


def check_input_caps(items: Sequence[InputItem], settings: Settings, field: str = "input") -> None:
    """Batch size and characters per text (plain strings, SMS, URLs; e-mails are bounded by the body cap
    and the pipeline's MIME caps, their model text by the e-mail layout)."""
    if len(items) > settings.max_batch:
        raise PayloadTooLarge(f"{len(items)} texts in one request; the limit is {settings.max_batch}")
    for i, item in enumerate(items):
        text = item if isinstance(item, str) else getattr(item, "text", None) or getattr(item, "url", None)
        if isinstance(text, str) and len(text) > settings.max_chars:
            raise PayloadTooLarge(
                f"{field}[{i}] has {len(text)} characters; the limit is {settings.max_chars}"
            )


def prepare_inputs(
    items: Sequence[InputItem], entries: Sequence[AdapterEntry], field: str = "input"
) -> list[list[Prepared]]:
    """prepared[i][j]: input i through adapter j's pipeline (computed once per distinct pipeline)."""
    by_pipeline: dict[tuple[str, int, object], list[Prepared]] = {}
    columns = []
    for e in entries:
        key = (e.pipeline.name, e.pipeline.version, e.pipeline.limits)
        if key not in by_pipeline:
            by_pipeline[key] = [_prepare_one(e, item, i, field) for i, item in enumerate(items)]
        columns.append(by_pipeline[key])
    return [[col[i] for col in columns] for i in range(len(items))]


class Preparer:
    """Input i through adapter e's pipeline, each (pipeline, input) once: the classify service asks per
    (input, adapter) job, which under routing is not the full cross product."""

    def __init__(self, items: Sequence[InputItem], field: str = "input") -> None:
        self.items = items
        self.field = field
        self._cache: dict[tuple[str, int, object, int], Prepared] = {}

    def __call__(self, index: int, entry: AdapterEntry) -> Prepared:
        key = (entry.pipeline.name, entry.pipeline.version, entry.pipeline.limits, index)
        if key not in self._cache:
            self._cache[key] = _prepare_one(entry, self.items[index], index, self.field)
        return self._cache[key]


def _prepare_one(entry: AdapterEntry, item: InputItem, index: int, field: str) -> Prepared:
    where = f"{field}[{index}]"
    try:
        prepared = entry.pipeline.prepare(item)
    except InputTooLarge as e:
        raise PayloadTooLarge(f"{where}: {e}") from e
    except InputError as e:
        raise ValidationFailed(f"{where}: {e}") from e
    except RecursionError as e:  # a structure deeper than any cap check could see (never a 500)
        raise PayloadTooLarge(f"{where}: the input nests too deeply to parse") from e
    if not prepared.text.strip():
        what = "e-mail has no subject and no text body" if prepared.style == "email" else "input has no text"
        raise ValidationFailed(f"{where}: the {what} left to classify after preprocessing")
    return prepared
