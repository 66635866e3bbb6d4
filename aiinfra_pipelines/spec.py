"""The workload specification: what a platform engineer writes to start an iteration.

A spec names the workload (a training part, an inference part, or both), the targets it
must meet (deadline or budget, latency SLO), the traffic to replay, the initial
autoscaling thresholds and where it may run. It is validated before anything runs:
a bad spec raises :class:`SpecError`, whose message names each bad field and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Target = Literal["local", "aws", "gcp"]
TraceFormat = Literal["azure", "alibaba-lora", "generic"]
PolicyFamily = Literal["static", "reactive", "predictive", "hybrid"]


class SpecError(ValueError):
    """A workload spec that does not validate; the message lists every bad field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid workload spec {source}:\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """The model to train and serve."""

    name: str = Field(description="A name for the model, used in labels and reports.")
    framework: Literal["numpy", "torch", "auto"] = Field(
        "auto", description="numpy always works; torch when installed; auto picks torch when importable."
    )
    hidden_units: list[int] = Field(
        default_factory=lambda: [128, 64], description="Hidden layer widths of the reference MLP."
    )
    # Published models are described by their cost, not by code: used by the planner.
    flops_per_sample: float | None = Field(
        None, gt=0, description="Training FLOPs per sample (forward+backward); derived from the architecture when absent."
    )
    parameters: float | None = Field(None, gt=0, description="Parameter count; derived when absent.")

    @field_validator("hidden_units")
    @classmethod
    def _positive_widths(cls, v: list[int]) -> list[int]:
        if not v or any(h <= 0 for h in v):
            raise ValueError("must be a non-empty list of positive integers")
        return v


class DatasetSpec(_Strict):
    name: Literal["digits", "breast_cancer", "wine", "iris"] = Field(
        "digits", description="A real dataset bundled with scikit-learn (no download)."
    )
    size_gb: float | None = Field(
        None, gt=0, description="Dataset size for storage-tier sizing; measured from the bundled data when absent."
    )


class TrainingSpec(_Strict):
    epochs: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536)
    learning_rate: float = Field(0.05, gt=0, le=10)


class LatencySLO(_Strict):
    """The latency objective of the inference part."""

    p99_latency_s: float = Field(0.25, gt=0, description="End-to-end latency that a request must not exceed.")
    ttft_s: float | None = Field(None, gt=0, description="Time to first token objective (LLM traces, simulator).")
    attainment: float = Field(0.99, gt=0, le=1, description="Fraction of requests that must meet the objective.")


class Targets(_Strict):
    deadline_hours: float | None = Field(None, gt=0, description="Training must finish within this many hours.")
    budget_usd: float | None = Field(None, gt=0, description="Spend limit for one iteration's training.")
    latency_slo: LatencySLO = Field(default_factory=LatencySLO)
    max_cost_per_1k_requests_usd: float | None = Field(None, gt=0)


class TrafficSpec(_Strict):
    """A real trace to replay against the inference part."""

    trace: str = Field(description="Path of the trace file (relative paths resolve against the spec's folder).")
    format: TraceFormat = "azure"
    time_scale: float = Field(
        60.0, gt=0, description="Trace seconds per replayed second: 60 replays one trace hour in one minute."
    )
    rate_scale: float = Field(1.0, gt=0, description="Multiplies the arrival rate (thins or replicates requests).")
    start_s: float = Field(0.0, ge=0, description="Offset into the trace, in trace seconds.")
    duration_s: float = Field(30.0, gt=0, le=3600, description="Length of the replay in wall-clock seconds.")
    max_requests: int | None = Field(None, ge=1)


class ScalingSpec(_Strict):
    """Initial autoscaling thresholds (the reactive policy's knobs)."""

    policy: PolicyFamily = "reactive"
    target_utilization: float = Field(0.6, gt=0, le=1, description="Busy fraction per replica to aim for.")
    target_queue_per_replica: float = Field(4.0, gt=0, description="In-flight requests per replica to aim for.")
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(4, ge=1)
    scale_up_stabilization_s: float = Field(0.0, ge=0)
    scale_down_stabilization_s: float = Field(300.0, ge=0)
    cooldown_s: float = Field(300.0, ge=0)
    control_interval_s: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> "ScalingSpec":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})")
        return self


class PlacementSpec(_Strict):
    clouds: list[Literal["aws", "gcp", "azure", "lambda"]] = Field(default_factory=lambda: ["aws", "gcp"])
    regions: list[str] = Field(default_factory=list, description="Allowed regions; empty allows all.")
    allow_spot: bool = True
    accelerators: list[str] = Field(default_factory=list, description="Restrict to these accelerators; empty allows all.")


class InferenceSpec(_Strict):
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4, 16, 64])
    max_batch_size: int = Field(32, ge=1)

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        if not v or any(b <= 0 for b in v):
            raise ValueError("must be a non-empty list of positive integers")
        return v


class WorkloadSpec(_Strict):
    """One workload's specification; the input of every iteration."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", description="DNS-label-like name.")
    target: Target = "local"
    model: ModelSpec
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    training: TrainingSpec | None = None
    inference: InferenceSpec | None = None
    targets: Targets = Field(default_factory=Targets)
    traffic: TrafficSpec | None = None
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    placement: PlacementSpec = Field(default_factory=PlacementSpec)
    max_iterations: int = Field(3, ge=1, le=100)
    improvement_tolerance: float = Field(
        0.02, ge=0, lt=1, description="Stop when a proposal improves predicted cost and SLO by less than this fraction."
    )

    @model_validator(mode="after")
    def _parts(self) -> "WorkloadSpec":
        if self.training is None and self.inference is None:
            raise ValueError("a workload needs a 'training' or an 'inference' section (or both)")
        if self.inference is not None and self.traffic is None:
            raise ValueError("an 'inference' workload needs a 'traffic' section naming the trace to replay")
        return self

    @property
    def has_training(self) -> bool:
        return self.training is not None

    @property
    def has_inference(self) -> bool:
        return self.inference is not None


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(spec)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append(f"{loc}: {msg}")
    return problems


def parse_spec(data: dict, source: str = "<dict>", base_dir: Path | None = None) -> WorkloadSpec:
    """Validate a spec given as a mapping; relative trace paths resolve against base_dir."""
    if not isinstance(data, dict):
        raise SpecError(source, [f"(spec): expected a mapping, got {type(data).__name__}"])
    try:
        spec = WorkloadSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, _format_errors(err)) from None
    if spec.traffic is not None and base_dir is not None:
        trace = Path(spec.traffic.trace).expanduser()
        if not trace.is_absolute():
            trace = (base_dir / trace).resolve()
        if not trace.exists():
            raise SpecError(source, [f"traffic.trace: file not found: {trace}"])
        spec = spec.model_copy(update={"traffic": spec.traffic.model_copy(update={"trace": str(trace)})})
    return spec


def load_spec(path: str | Path) -> WorkloadSpec:
    """Read and validate a YAML spec file."""
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), ["(file): not found"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise SpecError(str(path), [f"{where}: not valid YAML: {getattr(err, 'problem', err)}"]) from None
    return parse_spec(data, source=str(path), base_dir=path.parent)
