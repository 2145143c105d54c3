"""The torch-free bundle contract shared by training and serving (DESIGN.md §2, §3a).

Today it holds the versioned input pipeline (:mod:`.pipeline`: e-mail parsing, HTML → text, masking,
layout, style detection). It imports nothing from the rest of ``phishlens.training``: training code
imports it, and the server imports it without pulling in training code.
"""
