"""One iteration's manifests: built from the spec and the hardware plan, written as one folder of
YAML with a kustomization.yaml (``kubectl apply -k DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aiinfra_pipelines.k8s import builders as B
from aiinfra_pipelines.k8s import telemetry as T
from aiinfra_pipelines.provisioning.plan_view import adapt_plan_for_target

STORAGE_CLASSES = {"efs": "efs-sc", "fsx_lustre": "fsx-lustre-sc"}


def _autoscaling(spec, plan, deployments: list[tuple[str, Any]], profile, proposal) -> tuple[list[dict], list[dict]]:
    """A KEDA ScaledObject and an HPA v2 per inference Deployment, rendered by scaling/."""
    from aiinfra_pipelines.scaling.decision import decide_policy
    from aiinfra_pipelines.scaling.manifests import render_hpa, render_scaled_object

    decision = decide_policy(spec, profile, plan, proposal=proposal)
    policy = decision.policy()
    scaled, hpas = [], []
    for name, pool in deployments:
        if len(deployments) == 1:
            lo, hi = decision.min_replicas, decision.max_replicas
        else:
            lo, hi = pool.min_count, max(pool.max_count, 1)
        kw = dict(name=name, namespace=B.NAMESPACE, deployment=name, min_replicas=lo, max_replicas=hi)
        scaled.append(render_scaled_object(policy, prometheus_address=f"http://prometheus.{B.NAMESPACE}.svc:{B.PROMETHEUS_PORT}", **kw))
        hpas.append(render_hpa(policy, **kw))
    return scaled, hpas


def build_manifests(
    spec: Any,
    plan: Any,
    *,
    iteration: int = 0,
    image: str = B.DEFAULT_IMAGE,
    infra_outputs: dict | None = None,
    profile: Any = None,
    proposal: dict | None = None,
) -> B.ManifestBundle:
    """Every manifest of one iteration for ``spec`` on ``plan`` (AWS EKS).

    ``infra_outputs`` (the Terraform outputs of the applied plan) give the shared file system's
    kind and zones; without them the artifacts claim uses the EFS storage class and no zone affinity."""
    view, notes = adapt_plan_for_target(plan, "aws")
    bundle = B.ManifestBundle(workload=spec.name, iteration=int(iteration), notes=list(notes))
    outputs = infra_outputs or {}
    fs_kind = outputs.get("file_system_kind") or "efs"
    zones = list(outputs.get("file_system_zones") or [])
    affinity = B.zone_affinity(zones, required=fs_kind == "fsx_lustre")
    claim = f"{spec.name}-artifacts"

    bundle.add("00-namespace.yaml", B.namespace(spec.name, iteration))
    bundle.add("10-config.yaml", B.spec_configmap(spec, iteration),
               B.artifacts_claim(spec, iteration, storage_class=STORAGE_CLASSES[fs_kind], size_gb=max(view.storage.size_gb * 2, 10)))
    train_pools = view.pools_with_role("training")
    if spec.training is not None:
        if not train_pools:
            raise B.BuildError("plan.pools: the spec has a training part but the plan has no training pool")
        bundle.add("20-training-job.yaml", B.training_job(spec, view, train_pools[0], iteration=iteration, image=image,
                                                         artifacts_claim=claim, affinity=affinity))
    inf_pools = view.pools_with_role("inference")
    if spec.inference is not None:
        if not inf_pools:
            raise B.BuildError("plan.pools: the spec has an inference part but the plan has no inference pool")
        deployments = []
        for pool in inf_pools:
            name = B.inference_deployment_name(spec, pool, len(inf_pools))
            deployments.append((name, pool))
            bundle.add("30-inference.yaml", B.inference_deployment(spec, view, pool, name=name, iteration=iteration,
                                                                  image=image, artifacts_claim=claim, affinity=None))
        bundle.add("30-inference.yaml", B.inference_service(spec, iteration))
        scaled, hpas = _autoscaling(spec, view, deployments, profile, proposal)
        bundle.add("50-keda-scaledobject.yaml", *scaled)
        # the HPA is the alternative for clusters without KEDA: not in the kustomization by default
        bundle.add("alternatives/hpa.yaml", *hpas)
    bundle.add("40-prometheus.yaml", *T.prometheus_manifests(spec.name, iteration, view))
    dcgm = T.dcgm_exporter_manifests(spec.name, iteration, view)
    if dcgm:
        bundle.add("41-dcgm-exporter.yaml", *dcgm)
    if any(p.accelerator_kind == "neuron" for p in view.pools):
        bundle.notes.append("Neuron pools: the Neuron device plugin and neuron-monitor come from the EKS Neuron AMI set-up")
    bundle.add("42-node-exporter.yaml", *T.node_exporter_manifests(spec.name, iteration))
    bundle.add("45-network-policies.yaml", *T.network_policies(spec.name, iteration))
    return bundle


def kustomization(bundle: B.ManifestBundle) -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": B.NAMESPACE,
        "resources": sorted(f for f in bundle.files if "/" not in f),
        "labels": [{"pairs": {"aiinfra.io/iteration": str(bundle.iteration)}, "includeSelectors": False}],
    }


def write_manifests(bundle: B.ManifestBundle, out_dir: str | Path) -> list[Path]:
    """One YAML file per group (multi-document) and a kustomization.yaml; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, objs in sorted(bundle.files.items()):
        p = out / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump_all(objs, sort_keys=False))
        paths.append(p)
    k = out / "kustomization.yaml"
    k.write_text(yaml.safe_dump(kustomization(bundle), sort_keys=False))
    paths.append(k)
    return paths


def load_manifests(folder: str | Path) -> list[dict]:
    """Every Kubernetes object in the folder's YAML files (the kustomization excluded)."""
    objs = []
    for p in sorted(Path(folder).rglob("*.yaml")):
        if p.name == "kustomization.yaml":
            continue
        objs.extend(o for o in yaml.safe_load_all(p.read_text()) if o)
    return objs
