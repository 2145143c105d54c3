"""Why does a fine-tuned classifier fail to generalise? Evidence from its hidden states and its verdicts.

`diagnose(models, rows)` runs every model (anything that can score texts and return per-layer
hidden states, see :class:`DiagnosedModel`) over one labelled sample that spans all domains, and
collects five kinds of evidence (:mod:`.evidence`):

1. **where the decision forms** — the logit lens per layer and per style (`logit_lens`), and
   linear probes fitted on this sample for label, style and source (`probe_accuracy`): if style
   or source is more decodable than the label, the model *can* key on them (shortcut risk);
2. **what it reads** — SHAP top tokens per style (`shap`, via `phishlens.explain.attribution`);
3. **which cue flips it** — minimal pairs (`minimal_pairs`): remove the URL, change the sender,
   strip HTML, swap brands;
4. **how noisy the labels are** — rows the models confidently contradict, per source (`noise`);
5. **how it fails per style** — false-positive and false-negative rates on the sample.

`verdict()` (:mod:`.verdict`) runs the rules that turn them into typed `Finding`s (named failure modes with
their evidence); `write_report()` (:mod:`.report`) writes ``report.md``, ``diagnosis.json`` and PNG figures.
No server, training or vLLM imports here: the `phishlens diagnose` command (training/commands/diagnose.py)
builds the models and the sample.
"""

from .evidence import (
    CONFIDENT,
    STYLES,
    DiagnosedModel,
    Diagnosis,
    ModelEvidence,
    Row,
    diagnose,
    examine,
    noise_audit,
)
from .report import to_markdown, write_report
from .verdict import RULES, Finding, verdict

__all__ = [
    "CONFIDENT",
    "RULES",
    "STYLES",
    "DiagnosedModel",
    "Diagnosis",
    "Finding",
    "ModelEvidence",
    "Row",
    "diagnose",
    "examine",
    "noise_audit",
    "to_markdown",
    "verdict",
    "write_report",
]
