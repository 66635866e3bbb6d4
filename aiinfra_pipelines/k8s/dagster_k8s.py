"""The same plan for Dagster on Kubernetes: the PipesK8sClient pod (dagster-k8s ``build_pod_body``),
the ``k8s_job_executor`` config, and applying the manifests and running the workload through
PipesK8sClient when a kubeconfig is given (``AIINFRA_KUBECONFIG``, else ``KUBECONFIG``).

Building dagster-k8s pod specs is the point of this module, so it imports dagster_k8s; the
rest of the package does not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiinfra_pipelines.k8s import builders as B
from aiinfra_pipelines.provisioning.plan_view import adapt_plan_for_target


def kubeconfig_from_env(environ: dict | None = None) -> str | None:
    """The kubeconfig to use: AIINFRA_KUBECONFIG, else the first existing file of KUBECONFIG; None without one."""
    env = os.environ if environ is None else environ
    explicit = env.get("AIINFRA_KUBECONFIG")
    if explicit:
        if not Path(explicit).expanduser().is_file():
            raise FileNotFoundError(f"AIINFRA_KUBECONFIG={explicit}: no such file")
        return str(Path(explicit).expanduser())
    for part in (env.get("KUBECONFIG") or "").split(os.pathsep):
        if part and Path(part).expanduser().is_file():
            return str(Path(part).expanduser())
    return None


def _pool(view, role: str):
    pools = view.pools_with_role(role)
    if not pools:
        raise B.BuildError(f"plan.pools: no {role} pool")
    return pools[0]


def pipes_base_pod_spec(spec: Any, plan: Any, *, role: str = "training", artifacts_claim: str | None = None) -> dict:
    """``base_pod_spec`` for PipesK8sClient.run: the pool's scheduling, security and resources."""
    view, _ = adapt_plan_for_target(plan, "aws")
    pool = _pool(view, role)
    volumes, mounts = B._volumes(spec.name, artifacts_claim or f"{spec.name}-artifacts")
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": B._pod_security(),
        **B.pool_scheduling(view, pool),
        "volumes": volumes,
        "containers": [{
            "name": "dagster-pipes-execution",
            "resources": B.pool_resources(pool),
            "securityContext": B._container_security(),
            "volumeMounts": mounts,
        }],
    }


def pipes_command(role: str) -> list[str]:
    if role == "training":
        return ["python", "-m", "aiinfra_pipelines.workloads.trainer_process", "--spec", "/etc/aiinfra/spec.yaml",
                "--metrics-port", str(B.TRAIN_METRICS_PORT), "--model-out", "/artifacts/model.npz"]
    raise ValueError(f"role: PipesK8sClient runs the training part, got {role!r}")


def build_pipes_pod(spec: Any, plan: Any, *, iteration: int = 0, image: str = B.DEFAULT_IMAGE, role: str = "training",
                    env: dict[str, str] | None = None) -> dict:
    """The pod PipesK8sClient would create, built by dagster-k8s ``build_pod_body``, as a manifest dict."""
    from dagster_k8s.pipes import build_pod_body
    from kubernetes.client import ApiClient

    name = f"{spec.name}-{role}-{iteration}-pipes"[:63]
    meta = {"labels": {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/component": role,
                       B.JOB_LABEL: "training" if role == "training" else role, "aiinfra.io/iteration": str(iteration)}}
    pod = build_pod_body(name, image, pipes_command(role), dict(env or {}), meta, pipes_base_pod_spec(spec, plan, role=role))
    out = ApiClient().sanitize_for_serialization(pod)
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Pod")
    out["metadata"].setdefault("namespace", B.NAMESPACE)
    return out


def k8s_job_executor_config(spec: Any, plan: Any, *, image: str = B.DEFAULT_IMAGE, role: str = "training",
                            max_concurrent: int | None = None) -> dict:
    """``k8s_job_executor`` config running every step on the plan's ``role`` pool."""
    view, _ = adapt_plan_for_target(plan, "aws")
    pool = _pool(view, role)
    sched = B.pool_scheduling(view, pool)
    return {
        "job_image": image,
        "job_namespace": B.NAMESPACE,
        "image_pull_policy": "Always",
        "max_concurrent": int(max_concurrent or max(1, pool.max_count)),
        "labels": {"app.kubernetes.io/name": spec.name, "aiinfra.io/pool": pool.name},
        "step_k8s_config": {
            "container_config": {"resources": B.pool_resources(pool), "security_context": B._container_security()},
            "pod_spec_config": {"node_selector": sched["nodeSelector"], "tolerations": sched["tolerations"],
                                "security_context": B._pod_security()},
        },
    }


def validate_executor_config(config: dict) -> None:
    """Check the config against ``k8s_job_executor``'s own config schema; raises ValueError naming the problem."""
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor

    result = process_config(k8s_job_executor.config_schema.as_field().config_type, config)
    if not result.success:
        raise ValueError("k8s_job_executor config: " + "; ".join(e.message for e in result.errors))


# --- against a cluster ----------------------------------------------------------------------


def apply_manifests(objs: list[dict], kubeconfig: str, *, field_manager: str = "aiinfra") -> list[str]:
    """Server-side apply of every object (in order); returns ``kind/name`` of each."""
    from kubernetes import config, dynamic
    from kubernetes.client import api_client

    client = dynamic.DynamicClient(api_client.ApiClient(configuration=config.new_client_from_config(kubeconfig).configuration))
    done = []
    for obj in objs:
        api = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = obj["metadata"].get("namespace") if api.namespaced else None
        api.server_side_apply(body=obj, name=obj["metadata"]["name"], namespace=ns, field_manager=field_manager,
                              force_conflicts=True)
        done.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return done


def pipes_client(kubeconfig: str):
    """The PipesK8sClient for this kubeconfig (no in-cluster config)."""
    from dagster_k8s import PipesK8sClient

    return PipesK8sClient(load_incluster_config=False, kubeconfig_file=kubeconfig, poll_interval=2.0)


def run_workload_on_cluster(context, spec: Any, plan: Any, *, iteration: int, image: str = B.DEFAULT_IMAGE,
                            kubeconfig: str | None = None, infra_outputs: dict | None = None,
                            manifests_dir: str | Path | None = None):
    """Apply the iteration's manifests and run the training part through PipesK8sClient.

    For the ``workload_run`` asset: returns the Pipes invocation (``get_materialize_result()`` etc.),
    or None when no kubeconfig is given (then the local runner applies)."""
    from aiinfra_pipelines.k8s.manifests import build_manifests, write_manifests
    from aiinfra_pipelines.k8s.validate import validate_manifests

    kubeconfig = kubeconfig or kubeconfig_from_env()
    if kubeconfig is None:
        return None
    bundle = build_manifests(spec, plan, iteration=iteration, image=image, infra_outputs=infra_outputs)
    objs = [o for name, group in sorted(bundle.files.items()) if "/" not in name for o in group
            if o["kind"] != "Job"]  # the training pod is run by Pipes, not by a Job
    validate_manifests(objs)
    if manifests_dir is not None:
        write_manifests(bundle, manifests_dir)
    apply_manifests(objs, kubeconfig)
    pod = build_pipes_pod(spec, plan, iteration=iteration, image=image)
    return pipes_client(kubeconfig).run(
        context=context, image=image, command=pipes_command("training"), namespace=B.NAMESPACE,
        base_pod_meta={"labels": pod["metadata"]["labels"]},
        base_pod_spec=pipes_base_pod_spec(spec, plan),
    )
