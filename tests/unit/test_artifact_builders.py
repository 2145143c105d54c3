"""Artefact builders are registered explicitly: a builder module that fails to import fails the build loudly
(before, the failure was swallowed and bundles shipped without a drift reference)."""

from __future__ import annotations

import subprocess
import sys

BROKEN_REFERENCE = """
import sys
sys.modules["phishlens.explain.reference"] = None  # the drift reference builder's library cannot be imported
try:
    from phishlens.training import artifacts
    groups = sorted(artifacts.BUILDERS)
except ImportError as e:
    print("LOUD", e)
    raise SystemExit(3)
print("SILENT", groups)
"""


def test_a_broken_builder_module_fails_the_build_loudly():
    r = subprocess.run([sys.executable, "-c", BROKEN_REFERENCE], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and "LOUD" in r.stdout, (r.stdout, r.stderr[-2000:])


def test_builders_are_listed_explicitly():
    from phishlens.training import artifacts
    from phishlens.training.artifacts.probes import build_probes
    from phishlens.training.artifacts.reference import build_reference

    assert artifacts.BUILDERS == {"reference": build_reference, "probes": build_probes}
