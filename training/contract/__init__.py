"""The torch-free bundle contract shared by training and serving (DESIGN.md §2, §3, §3a).

- :mod:`.bundle`: the adapter bundle format (manifest, validation, content hash);
- :mod:`.prompt`: the prompt template, label tokens and head+tail truncation (token ids for both backends);
- :mod:`.base_models`: base-model lookup (embedded names, local checkpoints, hub ids) and the weights
  sha256 bundles pin; conversion and tiny test bases import transformers / torch only when called;
- :mod:`.pipeline` (with :mod:`.mime`, :mod:`.html_text`, :mod:`.masking`, :mod:`.layout`, :mod:`.style`):
  the versioned input pipeline.

It imports nothing from the rest of ``phishlens.training`` and no torch at import time: training code
imports it, and the server imports it without pulling in training code (tests/unit/test_contract.py).
"""
