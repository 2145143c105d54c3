"""Training: corpora → records → splits → mixes → LoRA fine-tune → calibration → evaluation → adapter bundle.

Grouped by job (DESIGN.md §2): ``contract`` (torch-free bundle contract shared with serving), ``data``
(corpora, records, splits, mixes, downloads), ``model`` (layer split, fine-tune, calibration, loading, the
TF-IDF peer), ``evaluation`` (per-source report, cross-domain matrix, unseen-source benchmark),
``artifacts`` (drift reference and probes built into bundles), ``commands`` (what the CLI runs: train,
evaluate, diagnose). ``cli`` is the Typer app the ``phishlens`` CLI mounts; ``bundle_sync`` the fleet's
bundle lock / fetch tool (``python -m phishlens.training.bundle_sync``).
"""
