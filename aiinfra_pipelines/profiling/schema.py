"""The typed profile: what the planner, the reports and the CI gate read."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuInfo(_Model):
    index: int
    name: str
    memory_total_bytes: int


class HostInfo(_Model):
    cpu_model: str
    logical_cpus: int
    memory_gib: float
    gpu: list[GpuInfo] = Field(default_factory=list)
    gpu_present: bool = False


class PhaseStat(_Model):
    seconds: float
    share: float = Field(description="Fraction of the step time (data_load + compute + optimizer).")


class OperatorStat(_Model):
    """One operator of the torch.profiler window."""

    name: str
    calls: int
    self_cpu_s: float
    device_s: float | None = None
    flops: float | None = None
    cpu_memory_bytes: int | None = None
    device_memory_bytes: int | None = None


class TorchWindow(_Model):
    steps: int
    operators: list[OperatorStat] = Field(default_factory=list)
    measured_flops_per_sample: float | None = Field(None, description="Sum of the FLOPs torch reports, per sample.")
    overhead_ratio: float | None = Field(None, description="Step time inside the window / outside (>= 1).")
    peak_device_memory_bytes: int | None = None
    error: str | None = None


class TrainingProfile(_Model):
    phases: dict[str, PhaseStat] = Field(description="data_load, compute (= forward + backward), forward, backward, optimizer.")
    epochs: int
    batch_size: int
    samples_per_s: float
    epoch_s: float = Field(description="Median epoch wall time.")
    samples_per_epoch: int
    peak_memory_bytes: int = Field(description="Peak resident memory of the process during training.")
    model_memory_bytes: int = Field(description="Parameters, gradients, momentum and activations of one batch (derived).")
    cpu_utilization: float | None = Field(description="Mean busy fraction of the host's CPUs used by this process.")
    gpu_utilization: float | None = Field(description="Mean SM utilisation; None when no GPU is present.")
    flops_per_sample: float
    bytes_per_sample: float
    arithmetic_intensity: float = Field(description="FLOPs per byte of memory traffic of a training step.")
    flops_source: str = Field(description="'derived' from the architecture or 'measured' by torch.profiler.")
    derived_flops_per_sample: float
    achieved_flops_per_s: float
    parameters: int
    dataset_bytes: int
    io_read_bytes_per_s_needed: float = Field(description="Input bytes per sample times samples_per_s.")
    test_accuracy: float
    torch_window: TorchWindow | None = None


class LatencyPoint(_Model):
    batch_size: int
    p50_s: float
    p99_s: float
    throughput_rps: float = Field(description="Requests per second of one sequential client at this batch size.")
    rows_per_s: float
    service_p50_s: float = Field(description="Server-side compute time, median.")
    requests: int


class SaturationPoint(_Model):
    concurrency: int
    throughput_rps: float
    p99_s: float


class InferenceProfile(_Model):
    latency_by_batch: list[LatencyPoint]
    saturation_rps: float = Field(description="Closed-loop throughput of one-row requests where it stops growing.")
    saturation_curve: list[SaturationPoint]
    trace_saturation_rps: float = Field(description="Same, for the typical trace request.")
    trace_saturation_curve: list[SaturationPoint]
    trace_request_service_s: float = Field(description="Mean service time of a typical trace request, alone.")
    trace_request_ttft_s: float
    trace_input_tokens: int
    trace_output_tokens: int
    tokens_per_row: int
    tokens_per_step: int
    max_batch_size: int
    flops_per_row: float
    flops_per_request: float = Field(description="Forward FLOPs of the typical trace request (prefill + decode).")
    bytes_per_request: float
    arithmetic_intensity: float
    flops_source: str = "derived"
    model_file: str


class WorkloadProfile(_Model):
    workload: str
    host: HostInfo
    framework: str
    training: TrainingProfile | None = None
    inference: InferenceProfile | None = None
    overhead_ratio: float | None = Field(None, description="Throughput with the always-on profiler / without.")
    wall_s: float = 0.0
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class Regression(_Model):
    metric: str
    baseline: float
    new: float
    change: float = Field(description="Relative change in the bad direction (0.25 = 25% worse).")
    tolerance: float
    higher_is_better: bool

    def __str__(self) -> str:
        return f"{self.metric}: {self.baseline:.6g} -> {self.new:.6g} ({self.change:+.1%} worse, tolerance {self.tolerance:.0%})"
