"""Offline validation: built-in kinds strictly against the Kubernetes 1.30 schemas
(kubernetes-validate), KEDA's ScaledObject against the openAPIV3Schema of its CRD."""

from __future__ import annotations

from pathlib import Path

KUBERNETES_VERSION = "1.30.0"


class ManifestInvalid(ValueError):
    """A manifest that does not validate; the message names kind, name and field path."""


def _ident(obj: dict) -> str:
    return f"{obj.get('kind', '?')} {(obj.get('metadata') or {}).get('name', '?')}"


def validate_manifest(obj: dict, *, crd_path: Path | None = None) -> str:
    """Validate one object; returns what it was validated against."""
    if obj.get("apiVersion") == "keda.sh/v1alpha1":
        from aiinfra_pipelines.scaling.manifests import ManifestError, validate_scaled_object

        try:
            validate_scaled_object(obj, crd_path=crd_path)
        except ManifestError as err:
            raise ManifestInvalid(f"{_ident(obj)}: {err}") from None
        return "keda CRD openAPIV3Schema"
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in getattr(err, "path", [])) or "<root>"
        raise ManifestInvalid(f"{_ident(obj)} {path}: {err.message}") from None
    except kubernetes_validate.SchemaNotFoundError as err:
        raise ManifestInvalid(f"{_ident(obj)}: no Kubernetes {KUBERNETES_VERSION} schema for {obj.get('apiVersion')} ({err})") from None
    return f"kubernetes {KUBERNETES_VERSION} strict"


def validate_manifests(objs: list[dict], *, crd_path: Path | None = None) -> dict[str, int]:
    """Validate every object; raises on the first invalid one; returns counts by validator."""
    counts: dict[str, int] = {}
    for obj in objs:
        how = validate_manifest(obj, crd_path=crd_path)
        counts[how] = counts.get(how, 0) + 1
    return counts
