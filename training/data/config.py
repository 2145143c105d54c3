"""Where the shared corpora live (``PHISHLENS_DATA_ROOT`` or ``<repo>/../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "PHISHLENS_DATA_ROOT"
REPO_ROOT = Path(__file__).resolve().parents[2]  # training/data/config.py -> the repo


class DataRootMissing(FileNotFoundError):
    """The corpora directory (holding ``raw/`` and ``MANIFEST.csv``) is not there."""


def data_root(check: bool = True) -> Path:
    """The data root: env ``PHISHLENS_DATA_ROOT``, else ``<repo>/../shared/data``.

    With ``check`` (default) raise :class:`DataRootMissing` when the directory or its ``raw/``
    folder does not exist.
    """
    env = os.environ.get(DATA_ROOT_ENV)
    root = Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"
    root = root.resolve()
    if check and not (root / "raw").is_dir():
        how = f"${DATA_ROOT_ENV}={env!r}" if env else f"default (set ${DATA_ROOT_ENV} to override)"
        raise DataRootMissing(
            f"phishlens data root not found: {root} has no raw/ folder ({how}). "
            "Point PHISHLENS_DATA_ROOT at the shared data directory (the one holding MANIFEST.csv and raw/)."
        )
    return root
