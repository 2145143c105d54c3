"""One process-wide lock around transformers/peft model loading.

`from_pretrained` patches torch globals while it builds a model (empty-weight init, tying); two loads in
different threads corrupt each other. Seen here: the drift monitor loading MiniLM in its worker thread
while the probe service loaded the tiny Llama left the tied `lm_head` uninitialised (logit lens 0.5 for a
served 1.0). Every loader in the process takes this lock.
"""

from __future__ import annotations

import threading

LOAD_LOCK = threading.RLock()
