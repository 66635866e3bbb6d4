"""Kubernetes manifests of one iteration for the ``aws`` target (EKS), validated offline.

``build_manifests(spec, plan, iteration=...)`` -> a :class:`ManifestBundle` (training Job, inference
Deployments and Service, Prometheus with generated scrape configs and rules, DCGM and node
exporters, KEDA ScaledObject and HPA v2); ``validate_manifests`` checks every object against the
Kubernetes 1.30 schemas (strict) or KEDA's CRD; ``write_manifests`` writes one folder with a
kustomization.yaml. The Dagster pieces (PipesK8sClient pod, ``k8s_job_executor`` config, running
on a cluster) live in :mod:`aiinfra_pipelines.k8s.dagster_k8s`."""

from __future__ import annotations

from aiinfra_pipelines.k8s.builders import BuildError, ManifestBundle
from aiinfra_pipelines.k8s.manifests import build_manifests, kustomization, load_manifests, write_manifests
from aiinfra_pipelines.k8s.validate import ManifestInvalid, validate_manifest, validate_manifests

__all__ = [
    "BuildError",
    "ManifestBundle",
    "ManifestInvalid",
    "build_manifests",
    "kustomization",
    "load_manifests",
    "validate_manifest",
    "validate_manifests",
    "write_manifests",
]
