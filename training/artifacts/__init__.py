"""Bundle artefacts built from the validation rows after fine-tuning (drift reference, probes).

`build` runs the explicitly listed builders (`BUILDERS`) and records their files in the manifest;
`context` is what a builder gets; `reference` and `probes` are the builders.
"""

from phishlens.training.artifacts.build import (
    BUILDERS,
    augment_bundle,
    build_artifacts,
    mix_rows,
    validation_rows,
)
from phishlens.training.artifacts.context import ArtifactContext, Builder

__all__ = [
    "BUILDERS",
    "ArtifactContext",
    "Builder",
    "augment_bundle",
    "build_artifacts",
    "mix_rows",
    "validation_rows",
]
