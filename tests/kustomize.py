"""A renderer for the subset of kustomize that deploy/kubernetes uses, and offline schema validation.

`kubectl kustomize` is not available on every CI machine (Debian ships no kustomize), so the tests render
the overlays here: `resources` (files and directories), `images` (newName/newTag on every container and
init container, as kustomize's image transformer does) and `patches` with a `target` and JSON 6902 ops.
Anything else in a kustomization is refused, so the subset cannot silently drift from what the files use;
where kubectl is installed, tests/unit/test_kubernetes.py checks this renderer against it.

Validation: core kinds with `kubernetes-validate` (strict: unknown fields are errors); custom resources with
the vendored CRDs' openAPIV3Schema (deploy/kubernetes/schemas), made strict the way the API server prunes:
an object schema with `properties` and neither `additionalProperties` nor
`x-kubernetes-preserve-unknown-fields` accepts no other keys.
"""

from __future__ import annotations

import copy
import gzip
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

KNOWN_KEYS = {"apiVersion", "kind", "resources", "images", "patches"}
SCHEMAS = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "schemas"
K8S_VERSION = "1.33.0"


class KustomizeError(ValueError):
    pass


def render(directory: Path) -> list[dict]:
    directory = Path(directory)
    kfile = directory / "kustomization.yaml"
    k = yaml.safe_load(kfile.read_text())
    unknown = set(k) - KNOWN_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict] = []
    for res in k.get("resources", []):
        path = (directory / res).resolve()
        if not path.is_relative_to(directory.resolve()) and not path.is_dir():
            raise KustomizeError(f"{kfile}: {res} is a file outside the kustomization (kustomize refuses it)")
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in k.get("patches", []):
        targets = [d for d in docs if _matches(d, patch["target"])]
        if not targets:
            raise KustomizeError(f"{kfile}: patch target {patch['target']} matches no resource")
        for d in targets:
            for op in yaml.safe_load(patch["patch"]):
                _apply(d, op)
    for img in k.get("images", []):
        for d in docs:
            _set_images(d, img)
    return docs


def _matches(doc: dict, target: dict) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    return (
        doc["kind"] == target.get("kind", doc["kind"])
        and doc["metadata"]["name"] == target.get("name", doc["metadata"]["name"])
        and group == target.get("group", group)
        and version == target.get("version", version)
    )


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _apply(doc: dict, op: dict) -> None:
    """One JSON patch (RFC 6902) operation: add, replace or remove."""
    *parents, last = _tokens(op["path"])
    node: Any = doc
    for t in parents:
        node = node[int(t)] if isinstance(node, list) else node[t]
    kind = op["op"]
    if isinstance(node, list):
        if kind == "add":
            node.insert(len(node) if last == "-" else int(last), copy.deepcopy(op["value"]))
        elif kind == "replace":
            node[int(last)] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[int(last)]
        else:
            raise KustomizeError(f"unsupported patch op {kind!r}")
    else:
        if kind in ("replace", "remove") and last not in node:
            raise KustomizeError(f"{kind} {op['path']}: no such field")
        if kind in ("add", "replace"):
            node[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[last]
        else:
            raise KustomizeError(f"unsupported patch op {kind!r}")


def _set_images(node: Any, img: dict) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for c in value:
                    name = (
                        c.get("image", "").split("@")[0].rsplit(":", 1)[0]
                        if ":" in c.get("image", "").split("/")[-1]
                        else c.get("image", "").split("@")[0]
                    )
                    if name == img["name"]:
                        c["image"] = (
                            f"{img.get('newName', img['name'])}:{img['newTag']}"
                            if "newTag" in img
                            else img.get("newName", img["name"])
                        )
            _set_images(value, img)
    elif isinstance(node, list):
        for v in node:
            _set_images(v, img)


# ---- validation -------------------------------------------------------------------------------------------
@lru_cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → strict openAPIV3Schema, from every vendored CRD."""
    out = {}
    for f in sorted(SCHEMAS.glob("*.yaml.gz")):
        for crd in yaml.safe_load_all(gzip.decompress(f.read_bytes())):
            if not crd:
                continue
            spec = crd["spec"]
            for v in spec["versions"]:
                if v.get("served"):
                    out[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = _strict(
                        v["schema"]["openAPIV3Schema"]
                    )
    return out


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _strict(v)
        if k in ("properties", "items", "additionalProperties", "anyOf", "allOf", "oneOf")
        else v
        for k, v in schema.items()
    }
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate(doc: dict) -> list[str]:
    """Schema errors of one rendered resource (empty: valid)."""
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_schemas():
        import jsonschema

        v = jsonschema.Draft7Validator(crd_schemas()[key])
        return [
            f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in v.iter_errors(doc)
        ]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}"]
    return []
