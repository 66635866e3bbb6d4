"""`aiinfra bench perf-model` and `aiinfra bench planner`."""

from __future__ import annotations

import json
import time

import click

# Published model sizes given by FLOPs and bytes (training FLOPs per sample = 3 x forward).
REFERENCE_WORKLOADS = {
    "resnet50": {"flops_per_sample": 3 * 4.1e9, "parameters": 25.6e6, "bytes_per_sample": 2 * 25e6,
                 "samples_per_epoch": 1_281_167, "dataset_bytes": 140e9, "batch_size": 256,
                 "source": "He et al. 2016 (4.1 GFLOPs/image forward), ImageNet-1k"},
    "bert-large": {"flops_per_sample": 6 * 340e6 * 512, "parameters": 340e6, "bytes_per_sample": 2 * 512 * 1024 * 24 * 16,
                   "samples_per_epoch": 1_000_000, "dataset_bytes": 20e9, "batch_size": 256,
                   "source": "Devlin et al. 2019 (340M parameters, sequence 512)"},
    "llm-7b-finetune": {"flops_per_sample": 6 * 7e9 * 2048, "parameters": 7e9, "bytes_per_sample": 2 * 2048 * 4096 * 32 * 16,
                        "samples_per_epoch": 50_000, "dataset_bytes": 0.4e9, "batch_size": 64,
                        "source": "Touvron et al. 2023 (Llama-2-7B), 2048-token samples"},
}
PAPER_CLAIMS = {"vs_cpu_only_speedup": 3.0, "vs_gpu_only_speedup": (1.5, 2.0)}


@click.command("perf-model")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on the last line.")
@click.option("--fast", is_flag=True, help="Three models only (the CI mode).")
def perf_model_command(as_json: bool, fast: bool):
    """Fit the performance model on A100 operator timings; report its error on H100 and A40."""
    from aiinfra_pipelines.planning.perf_model import run_perf_model_validation

    t = time.perf_counter()
    r = run_perf_model_validation(fast=fast)
    click.echo(f"fitted on a100 (fit median APE {r['fit_median_ape']:.3f}); {time.perf_counter() - t:.1f} s")
    click.echo(f"{'gpu':6} {'ops':>6} {'median':>7} {'p90':>7} {'matmul':>7} {'membound':>8} {'speedup':>8}")
    for g, s in r["gpus"].items():
        click.echo(f"{g:6} {s['operators']:6d} {s['median_ape']:7.3f} {s['p90_ape']:7.3f} {s['matmul']['median_ape']:7.3f} "
                   f"{s['memory_bound']['median_ape']:8.3f} {s['speedup_median_ape']:8.3f}")
    click.echo(f"speedup median APE (both): {r['speedup_median_ape']:.3f}")
    if as_json:
        out = {"gpus": {g: {k: s[k] for k in ("median_ape", "p90_ape", "operators", "matmul", "memory_bound", "by_operator")}
                        for g, s in r["gpus"].items()},
               "speedup_median_ape": r["speedup_median_ape"], "fitted_on": "a100"}
        click.echo(json.dumps(out))


def run_planner_report(catalog=None) -> dict:
    from aiinfra_pipelines.planning.catalog import load_catalog
    from aiinfra_pipelines.planning.optimizer import plan_inference_mix, plan_training, replica_capacity

    cat = catalog or load_catalog()
    frame = cat.filter(cloud=["aws", "gcp", "azure"])
    report = {"catalog_snapshot": cat.snapshot, "workloads": {}, "paper_claims": PAPER_CLAIMS}
    for name, w in REFERENCE_WORKLOADS.items():
        t = time.perf_counter()
        res = plan_training(w, frame, epochs=1, batch_size=w["batch_size"], samples_per_epoch=w["samples_per_epoch"], catalog=cat)
        plan_s = time.perf_counter() - t
        rows = res["rows"]
        budget = None
        # the chosen plan: fastest within the cost of the cheapest plan x 2 (a budget the user would accept)
        cheapest = min(rows, key=lambda r: r["training_cost_usd"])
        budget = 2 * cheapest["training_cost_usd"]
        within = [r for r in rows if r["training_cost_usd"] <= budget]
        chosen = min(within, key=lambda r: r["training_time_s"])
        cpu = [r for r in within if r["accelerator"] is None] or [r for r in rows if r["accelerator"] is None]
        cpu_best = min(cpu, key=lambda r: r["training_time_s"])
        gpu_single = [r for r in within if r["accelerator"] and r["count"] == 1 and r["accelerators_per_node"] <= 1]
        gpu_best = min(gpu_single, key=lambda r: r["training_time_s"]) if gpu_single else None

        def brief(r):
            return None if r is None else {k: r[k] for k in ("cloud", "instance_type", "accelerator", "count", "spot",
                                                             "epoch_time_s", "training_cost_usd")}
        report["workloads"][name] = {
            "source": w["source"], "budget_usd": budget, "chosen": brief(chosen), "cpu_only": brief(cpu_best),
            "single_gpu": brief(gpu_best), "speedup_vs_cpu_only": cpu_best["epoch_time_s"] / chosen["epoch_time_s"],
            "speedup_vs_single_gpu": gpu_best["epoch_time_s"] / chosen["epoch_time_s"] if gpu_best else None,
            "pareto_points": len(res["pareto"]), "candidates": len(rows), "planning_time_s": plan_s}
    # inference: Llama-2-7B on the Azure conversation trace, sized for its peak rate
    from aiinfra_pipelines.paths import shared_data_dir
    import pandas as pd

    trace = shared_data_dir() / "inference_traces" / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    tr = pd.read_csv(trace)
    ts = pd.to_datetime(tr.TIMESTAMP)
    peak = int(ts.dt.floor("s").value_counts().max())
    prompt, out = int(tr.ContextTokens.mean()), int(tr.GeneratedTokens.mean())
    t = time.perf_counter()
    cap = replica_capacity({"parameters": 7e9}, frame[frame.accelerator.notna()], slo_s=20.0, prompt_tokens=prompt,
                           output_tokens=out, catalog=cat)
    mix = plan_inference_mix(cap, float(peak))
    report["inference"] = {"trace": trace.name, "peak_rps": peak, "mean_prompt_tokens": prompt, "mean_output_tokens": out,
                           "slo_s": 20.0, "mix": [{k: m[k] for k in ("cloud", "instance_type", "accelerator", "count", "rps", "price_per_hour")} for m in mix["mix"]],
                           "mix_cost_per_hour_usd": mix["cost_per_hour_usd"], "best_single": mix["best_single"],
                           "savings_vs_best_single": mix["savings_vs_best_single"], "planning_time_s": time.perf_counter() - t}
    return report


@click.command("planner")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on the last line.")
def planner_command(as_json: bool):
    """Plans for ResNet-50, BERT-large and a 7B fine-tune against CPU-only and the best single GPU."""
    r = run_planner_report()
    for name, w in r["workloads"].items():
        c, cpu, g = w["chosen"], w["cpu_only"], w["single_gpu"]
        click.echo(f"{name}: chosen {c['count']}x {c['instance_type']} ({c['accelerator']}, {c['cloud']}, spot={c['spot']}) "
                   f"epoch {c['epoch_time_s'] / 3600:.2f} h ${c['training_cost_usd']:.2f}; CPU-only {cpu['instance_type']} "
                   f"{cpu['epoch_time_s'] / 3600:.1f} h; single GPU {g['instance_type'] if g else '-'} "
                   f"{(g['epoch_time_s'] / 3600) if g else float('nan'):.2f} h; speedup vs CPU {w['speedup_vs_cpu_only']:.1f}x, "
                   f"vs single GPU {w['speedup_vs_single_gpu'] or float('nan'):.2f}x; plan {w['planning_time_s']:.2f} s")
    i = r["inference"]
    click.echo(f"inference (azure conv, peak {i['peak_rps']} rps): mix ${i['mix_cost_per_hour_usd']:.2f}/h "
               f"{[(m['count'], m['instance_type']) for m in i['mix']]} vs best single {i['best_single']['count']}x "
               f"{i['best_single']['instance_type']} ${i['best_single']['cost_per_hour_usd']:.2f}/h "
               f"(saves {100 * i['savings_vs_best_single']:.1f}%)")
    click.echo(f"paper claims: {r['paper_claims']}")
    if as_json:
        click.echo(json.dumps(r, default=str))
