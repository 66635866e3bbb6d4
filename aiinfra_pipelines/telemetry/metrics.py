"""Names of the Prometheus series the workloads export and the rules record.

One source of truth for the exporters (workloads/), the generated recording rules and
scrape configs (telemetry/), the autoscaling triggers (scaling/ KEDA and HPA manifests),
the live controller (execution/) and the analytics that pull series into DuckDB.
"""

# --- exported by every inference replica (label: replica) ---------------------------------
INFERENCE_REQUESTS_TOTAL = "aiinfra_inference_requests_total"  # counter, label status=ok|error
INFERENCE_REQUEST_DURATION = "aiinfra_inference_request_duration_seconds"  # histogram, queueing + service
INFERENCE_QUEUE_LENGTH = "aiinfra_inference_queue_length"  # gauge: requests waiting or in service
INFERENCE_BUSY_SECONDS_TOTAL = "aiinfra_inference_busy_seconds_total"  # counter: time the model computed
INFERENCE_BATCH_SIZE = "aiinfra_inference_batch_size"  # histogram of executed batch sizes

# --- exported by the training worker ------------------------------------------------------
TRAINING_EPOCHS_TOTAL = "aiinfra_training_epochs_total"  # counter
TRAINING_SAMPLES_TOTAL = "aiinfra_training_samples_total"  # counter
TRAINING_EPOCH_SECONDS = "aiinfra_training_epoch_seconds"  # histogram
TRAINING_PHASE_SECONDS_TOTAL = "aiinfra_training_phase_seconds_total"  # counter, label phase
TRAINING_LOSS = "aiinfra_training_loss"  # gauge

# --- exported by the host exporter (this machine) ------------------------------------------
HOST_CPU_UTILIZATION = "aiinfra_host_cpu_utilization_ratio"  # gauge 0..1
HOST_MEMORY_USED_BYTES = "aiinfra_host_memory_used_bytes"  # gauge
GPU_UTILIZATION = "aiinfra_gpu_utilization_ratio"  # gauge 0..1, label gpu; absent without a GPU
GPU_MEMORY_USED_BYTES = "aiinfra_gpu_memory_used_bytes"  # gauge, label gpu
HOST_MEMORY_TOTAL_BYTES = "aiinfra_host_memory_total_bytes"  # gauge
GPU_POWER_WATTS = "aiinfra_gpu_power_watts"  # gauge, label gpu; absent without a GPU

# --- recording rules (telemetry/ generates them; the controller and reports read them) -----
RULE_REQUEST_RATE = "aiinfra:inference_request_rate:rate30s"  # sum over replicas, req/s
RULE_UTILIZATION = "aiinfra:inference_utilization:avg30s"  # mean busy fraction per replica
RULE_QUEUE_PER_REPLICA = "aiinfra:inference_queue_per_replica:avg"  # mean queue length per replica
RULE_LATENCY_P99 = "aiinfra:inference_latency_seconds:p99_30s"  # histogram_quantile over replicas
RULE_READY_REPLICAS = "aiinfra:inference_ready_replicas:count"  # count(up{job="inference"} == 1)

# Prometheus job names used in scrape configs and file_sd target files.
JOB_INFERENCE = "inference"
JOB_TRAINING = "training"
JOB_HOST = "host"
JOB_PROMETHEUS = "prometheus"  # the server scraping itself (its port is known only once it listens)
