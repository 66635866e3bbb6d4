#!/usr/bin/env python
"""Rebuild the packaged hardware catalog from the public catalog and spec files.

    .venv/bin/python scripts/refresh_catalog.py [--data-dir ../shared/data]

Reads ``instance_catalogs/`` (AWS vantage snapshot, SkyPilot-format GCP and Azure catalogs) and
``accelerator_perf/`` (published accelerator specs) and writes, under
``aiinfra_pipelines/data/catalog/``:

- ``instances.csv.gz``: one row per (cloud, region, instance type) with on-demand and spot prices;
- ``accelerators.csv``: one row per accelerator name with peak dense bf16/fp16 TFLOPS, FP32 TFLOPS,
  HBM size and bandwidth, TDP, SM count and clock;
- ``snapshot.json``: snapshot date, row counts and the source files with their checksums.

GCP accelerators are attachable (SkyPilot rows with an empty InstanceType): each accelerator row is
combined with its host VM (a2/a3/a4/g2 for the bundled types, n1-standard for T4/V100/P100/P4) and the
two prices are added, the way SkyPilot prices them. TPU slices are priced per slice-hour, no host.
To refresh against newer sources, replace the files in the shared data folder (keeping their names or
editing SOURCES below) and rerun; the script is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from aiinfra_pipelines.paths import PACKAGE_DATA, shared_data_dir  # noqa: E402

OUT = PACKAGE_DATA / "catalog"
SNAPSHOT_DATE = "2025-11-30"  # the AWS vantage snapshot; GCP/Azure files are from the 2026-05-20 catalog commit
SOURCES = {
    "aws": "instance_catalogs/aws_accelerator_instances_vantage_2025-11-30.csv",
    "gcp": "instance_catalogs/gcp_vms_skypilot_format.csv.gz",
    "azure": "instance_catalogs/azure_vms_skypilot_format.csv.gz",
    "peak_tflops": "accelerator_perf/mlengineering_peak_tflops_dense.csv",
    "memory": "accelerator_perf/mlengineering_accelerator_memory.csv",
    "nvidia_specs": "accelerator_perf/nvidia_gpu_specs_gmasse.json",
    "neuron": "accelerator_perf/aws_neuron_chip_specs_from_docs.csv",
    "llm_analysis": "accelerator_perf/llm_analysis_gpu_configs.csv",
}
MAX_TPU_CHIPS = 256
# AWS Spot Advisor bands ("frequency of interruption", per month) -> band midpoint as a fraction
INTERRUPT_BANDS = {"<5%": 0.025, "5-10%": 0.075, "10-15%": 0.125, "15-20%": 0.175, ">20%": 0.25}

# catalog accelerator name -> (mlengineering row, gmasse key, llm-analysis name, neuron chip)
SPEC_KEYS = {
    "A100": ("NVIDIA A100 SXM", "a100_sxm4_40gb", "a100-sxm-40gb", None),
    "A100-80GB": ("NVIDIA A100 SXM", "a100_sxm4_80gb", "a100-sxm-80gb", None),
    "H100": ("NVIDIA H100 SXM", None, "h100-sxm-80gb", None),
    "H100-MEGA": ("NVIDIA H100 SXM", None, "h100-sxm-80gb", None),
    "H200": ("NVIDIA H200 SXM", "h200_nvl", None, None),
    "B200": ("NVIDIA B200 SXM", None, None, None),
    "B300": ("NVIDIA B300 SXM", None, None, None),
    "L40S": ("NVIDIA L40S", "l40s", None, None),
    "L4": (None, "l4", None, None),
    "A10": (None, "a10", "a10-pcie-28gb", None),
    "A10G": (None, None, "a10g-pcie-24gb", None),
    "T4": (None, "t4", None, None),
    "V100": (None, "v100_sxm2", "v100-sxm-16gb", None),
    "V100-32GB": (None, "v100_sxm2", "v100-sxm-32gb", None),
    "MI300X": ("AMD MI300X", None, None, None),
    "Inferentia": (None, None, None, "Inferentia"),
    "Inferentia2": (None, None, None, "Inferentia2"),
    "Trainium": (None, None, None, "Trainium"),
    "Trainium2": ("AWS Trainium2 / Ultra", None, None, "Trainium2"),
    "tpu-v4": ("Google TPU v4", None, None, None),
    "tpu-v5e": ("Google TPU v5e", None, None, None),
    "tpu-v5p": ("Google TPU v5p", None, None, None),
    "tpu-v6e": ("Google TPU v6e", None, None, None),
}
# Figures the spec files lack, from the vendors' datasheets (URL per row in accelerators.csv).
SUPPLEMENT = {
    "A40": dict(peak_tflops_bf16=149.7, fp32_tflops=37.4, hbm_gib=48, hbm_bandwidth_gbps=696, tdp_w=300,
                cuda_cores=10752, sm_count=84,
                spec_source="https://images.nvidia.com/content/Solutions/data-center/a40/nvidia-a40-datasheet.pdf"),
    "H100": dict(fp32_tflops=67.0, tdp_w=700, cuda_cores=16896, sm_count=132,
                 spec_source="https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"),
    "H100-MEGA": dict(fp32_tflops=67.0, tdp_w=700, cuda_cores=16896, sm_count=132,
                      spec_source="https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"),
    "H200": dict(fp32_tflops=67.0, tdp_w=700, cuda_cores=16896, sm_count=132,
                 spec_source="https://www.nvidia.com/en-us/data-center/h200/"),
    "V100": dict(hbm_gib=16, spec_source="https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf"),
    "V100-32GB": dict(hbm_gib=32, spec_source="https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf"),
    "tpu-v6e": dict(hbm_gib=32, hbm_bandwidth_gbps=1640, spec_source="https://cloud.google.com/tpu/docs/v6e"),
    "T4": dict(peak_tflops_bf16=65.0, spec_source="https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"),
    "A10G": dict(tdp_w=300, spec_source="https://d1.awsstatic.com/product-marketing/ec2/NVIDIA_AWS_A10G_DataSheet_FINAL_02_17_2022.pdf"),
    "B200": dict(tdp_w=1000, spec_source="https://www.nvidia.com/en-us/data-center/dgx-b200/"),
    "B300": dict(tdp_w=1100, spec_source="https://www.nvidia.com/en-us/data-center/gb300-nvl72/"),
    "MI300X": dict(tdp_w=750, spec_source="https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html"),
}


def _num(x):
    try:
        return float(str(x).replace(",", ""))
    except ValueError:
        return np.nan


def build_accelerators(data: Path) -> pd.DataFrame:
    peak = pd.read_csv(data / SOURCES["peak_tflops"]).set_index("Accelerator")
    mem = pd.read_csv(data / SOURCES["memory"]).set_index("Accelerator")
    nv = json.loads((data / SOURCES["nvidia_specs"]).read_text())
    la = pd.read_csv(data / SOURCES["llm_analysis"]).set_index("name")
    neu = pd.read_csv(data / SOURCES["neuron"]).set_index("chip")
    rows = []
    for name in sorted(set(SPEC_KEYS) | set(SUPPLEMENT)):
        ml, gm, ll, ne = SPEC_KEYS.get(name, (None, None, None, None))
        r = dict(accelerator=name, peak_tflops_bf16=np.nan, fp32_tflops=np.nan, hbm_gib=np.nan,
                 hbm_bandwidth_gbps=np.nan, tdp_w=np.nan, cuda_cores=np.nan, sm_count=np.nan,
                 intra_node_bandwidth_gbps=np.nan, spec_source=[])
        if ne is not None:
            n = neu.loc[ne]
            r["peak_tflops_bf16"] = _num(n.bf16_fp16_tflops_dense)
            r["fp32_tflops"] = _num(n.fp32_tflops)
            r["hbm_gib"] = _num(n.device_memory_GiB)
            bw = _num(n.memory_bandwidth)
            unit = str(n.memory_bandwidth_unit_as_published)
            r["hbm_bandwidth_gbps"] = bw * 1000 if unit.startswith("TB") else bw * 1.073741824
            r["spec_source"].append(SOURCES["neuron"])
        if gm is not None:
            g = nv[gm]
            r["peak_tflops_bf16"] = _num(g.get("bf16_tensor_core") or g.get("fp16_tensor_core") or np.nan)
            r["fp32_tflops"] = _num(g["fp32"])
            r["hbm_gib"] = _num(str(g["gpu_memory"]).split("/")[0])
            r["hbm_bandwidth_gbps"] = _num(g["memory_bandwidth"])
            r["tdp_w"] = _num(g["power_consumption"])
            r["cuda_cores"] = _num(g["nvidia_cuda_cores"])
            tc = _num(g["nvidia_tensor_cores"])
            r["sm_count"] = tc / 4 if g.get("nvidia_tensor_cores_generation", 0) and g["nvidia_tensor_cores_generation"] >= 3 else tc / 8
            r["spec_source"].append(SOURCES["nvidia_specs"] + "#" + gm)
        if ll is not None:
            lrow = la.loc[ll]
            if gm is not None:
                r["intra_node_bandwidth_gbps"] = _num(lrow.intra_node_bandwidth_in_GB_per_sec)
                r["spec_source"].append(SOURCES["llm_analysis"] + "#" + ll)
                ll = None
        if ll is not None:
            if np.isnan(r["peak_tflops_bf16"]) or r["peak_tflops_bf16"] == 0:
                r["peak_tflops_bf16"] = _num(lrow.peak_fp16_TFLOPS)
            r["hbm_gib"] = _num(lrow.mem_per_GPU_in_GB)
            r["hbm_bandwidth_gbps"] = _num(lrow.hbm_bandwidth_in_GB_per_sec)
            r["intra_node_bandwidth_gbps"] = _num(lrow.intra_node_bandwidth_in_GB_per_sec)
            r["spec_source"].append(SOURCES["llm_analysis"] + "#" + ll)
        if ml is not None:
            r["peak_tflops_bf16"] = _num(peak.loc[ml, "bf16"])
            if ml in mem.index and gm is None:  # the datasheet figures of the gmasse file win for the exact SKU
                r["hbm_gib"] = _num(mem.loc[ml, "Memory (GB)"])
                r["hbm_bandwidth_gbps"] = _num(mem.loc[ml, "Peak Bandwidth (TBps)"]) * 1000
            r["spec_source"].append(SOURCES["peak_tflops"] + "#" + ml)
        for k, v in SUPPLEMENT.get(name, {}).items():
            if k == "spec_source":
                r["spec_source"].append(v)
            else:
                r[k] = v
        r["spec_source"] = " ; ".join(r["spec_source"])
        rows.append(r)
    df = pd.DataFrame(rows)
    df["clock_ghz"] = df.fp32_tflops * 1e3 / (2 * df.cuda_cores)
    return df


def build_aws(data: Path) -> pd.DataFrame:
    a = pd.read_csv(data / SOURCES["aws"])
    out = pd.DataFrame({
        "cloud": "aws", "region": a.Region, "instance_type": a.InstanceType, "accelerator": a.AcceleratorName,
        "accelerator_count": a.AcceleratorCount.astype(float), "vcpus": a.vCPUs.astype(float),
        "memory_gib": a.MemoryGiB.astype(float), "price_per_hour": a.Price.astype(float),
        "spot_price_per_hour": a.SpotPriceAvg.astype(float),
        "spot_interruption_rate": a.SpotInterruptFreq.map(INTERRUPT_BANDS),
    })
    return out


FIXES: dict[str, int] = {}


def _tpu(name: str) -> tuple[str, float]:
    m = re.fullmatch(r"tpu-(v\d+[a-z]*|v5litepod)-(\d+)", name)
    gen, n = m.group(1), int(m.group(2))
    if gen == "v5litepod":
        return "tpu-v5e", n
    if gen in ("v6e",):
        return "tpu-v6e", n
    return f"tpu-{gen}", n / 2  # v2/v3/v4/v5p slices are named by TensorCores, two per chip


def _gcp_host(acc: str, n: int) -> str | None:
    bundled = {"A100": f"a2-highgpu-{n}g", "A100-80GB": f"a2-ultragpu-{n}g", "H100": f"a3-highgpu-{n}g",
               "H100-MEGA": "a3-megagpu-8g", "H200": "a3-ultragpu-8g", "B200": "a4-highgpu-8g",
               "L4": {1: "g2-standard-4", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"}.get(n)}
    if acc in bundled:
        return bundled[acc]
    if acc in ("T4", "V100", "P100", "P4"):
        return f"n1-standard-{min(8 * n, 96)}"
    return None


# Host vCPUs per TPU chip, from the TPU VM machine types in Google's TPU documentation
# (ct4p-hightpu-4t: 240 vCPU / 4 chips; ct5lp-hightpu-8t: 224 / 8, -1t: 24; ct5p-hightpu-4t: 208 / 4;
# ct6e-standard-8t: 180 / 8, -1t: 44; v2-8 / v3-8: 96 / 4). The source catalog lists no host for TPU rows.
TPU_HOST_VCPUS_PER_CHIP = {"tpu-v2": 24.0, "tpu-v3": 24.0, "tpu-v4": 60.0, "tpu-v5e": 28.0, "tpu-v5p": 52.0, "tpu-v6e": 22.5}
TPU_SINGLE_CHIP_HOST_VCPUS = {"tpu-v5e": 24.0, "tpu-v6e": 44.0}
GPUHUNT_TPU = {"tpu-v6e": "TPU v6e", "tpu-v5p": "TPU v5p", "tpu-v5e": "TPU v5e", "tpu-v4": "TPU v4 pod",
               "tpu-v3": "TPU v3 pod", "tpu-v2": "TPU v2 pod"}
MAX_PLAUSIBLE_USD_PER_CHIP_HOUR = 20.0  # no TPU chip lists above this; larger values are placeholders (e.g. 700.0)


def _fix_tpu_prices(tpu: pd.DataFrame, data: Path) -> tuple[pd.DataFrame, int]:
    """Replace placeholder TPU prices with the per-chip prices of gcp_tpu_pricing_gpuhunt.json x chips."""
    hunt = json.loads((data / "instance_catalogs" / "gcp_tpu_pricing_gpuhunt.json").read_text())
    fixed = 0
    for col, key in (("Price", "On Demand (USD)"), ("SpotPrice", "Spot (USD)")):
        per_chip = tpu[col] / tpu.chips
        bad = per_chip.isna() | (per_chip > MAX_PLAUSIBLE_USD_PER_CHIP_HOUR) | (per_chip <= 0)
        for i in tpu.index[bad]:
            ref = hunt.get(GPUHUNT_TPU.get(tpu.at[i, "acc"], ""), {}).get(tpu.at[i, "Region"], {}).get(key)
            tpu.at[i, col] = float(ref) * tpu.at[i, "chips"] if ref else np.nan
            fixed += 1
    return tpu[tpu.Price.notna()], fixed


def build_gcp(data: Path) -> pd.DataFrame:
    g = pd.read_csv(data / SOURCES["gcp"])
    hosts = g[g.InstanceType.notna()]
    accs = g[g.InstanceType.isna()]
    # CPU-only host types (families without accelerators bundled)
    cpu = hosts[~hosts.InstanceType.str.match(r"^(a2|a3|a4|g2)-") & ~hosts.InstanceType.str.contains("tpu")]
    cpu = cpu.groupby(["Region", "InstanceType"], as_index=False).agg(
        vCPUs=("vCPUs", "first"), MemoryGiB=("MemoryGiB", "first"), Price=("Price", "min"), SpotPrice=("SpotPrice", "min"))
    rows = [pd.DataFrame({"cloud": "gcp", "region": cpu.Region, "instance_type": cpu.InstanceType, "accelerator": None,
                          "accelerator_count": 0.0, "vcpus": cpu.vCPUs, "memory_gib": cpu.MemoryGiB,
                          "price_per_hour": cpu.Price, "spot_price_per_hour": cpu.SpotPrice})]
    tpu = accs[accs.AcceleratorName.str.startswith("tpu-")].copy()
    parsed = tpu.AcceleratorName.map(_tpu)
    tpu["acc"] = parsed.str[0]
    tpu["chips"] = parsed.str[1]
    tpu = tpu[(tpu.chips <= MAX_TPU_CHIPS) & tpu.acc.isin(["tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v2", "tpu-v3"])]
    tpu = tpu.groupby(["Region", "AcceleratorName"], as_index=False).agg(
        acc=("acc", "first"), chips=("chips", "first"), Price=("Price", "min"), SpotPrice=("SpotPrice", "min"))
    tpu, n_fixed = _fix_tpu_prices(tpu, data)
    FIXES["tpu_placeholder_prices_replaced"] = n_fixed
    host_vcpus = [TPU_SINGLE_CHIP_HOST_VCPUS.get(a, TPU_HOST_VCPUS_PER_CHIP[a]) if c == 1 else TPU_HOST_VCPUS_PER_CHIP[a] * c
                  for a, c in zip(tpu.acc, tpu.chips)]
    rows.append(pd.DataFrame({"cloud": "gcp", "region": tpu.Region, "instance_type": tpu.AcceleratorName,
                              "accelerator": tpu.acc, "accelerator_count": tpu.chips, "vcpus": host_vcpus,
                              "memory_gib": np.nan, "price_per_hour": tpu.Price, "spot_price_per_hour": tpu.SpotPrice}))
    gpu = accs[~accs.AcceleratorName.str.startswith("tpu-")].copy()
    gpu["host"] = [_gcp_host(a, int(n)) for a, n in zip(gpu.AcceleratorName, gpu.AcceleratorCount)]
    gpu = gpu[gpu.host.notna()]
    h = hosts[["InstanceType", "AvailabilityZone", "vCPUs", "MemoryGiB", "Price", "SpotPrice"]].rename(
        columns={"InstanceType": "host", "Price": "host_price", "SpotPrice": "host_spot"})
    j = gpu.merge(h, on=["host", "AvailabilityZone"], how="inner", suffixes=("_acc", ""))
    j["total"] = j.Price + j.host_price
    j["total_spot"] = j.SpotPrice + j.host_spot
    j["itype"] = np.where(j.host.str.startswith("n1-"), j.host + "+" + j.AcceleratorName.str.lower() + "x" + j.AcceleratorCount.astype(int).astype(str), j.host)
    j = j.groupby(["Region", "itype"], as_index=False).agg(
        acc=("AcceleratorName", "first"), n=("AcceleratorCount", "first"), vcpus=("vCPUs", "first"),
        mem=("MemoryGiB", "first"), price=("total", "min"), spot=("total_spot", "min"))
    rows.append(pd.DataFrame({"cloud": "gcp", "region": j.Region, "instance_type": j.itype, "accelerator": j.acc,
                              "accelerator_count": j.n.astype(float), "vcpus": j.vcpus, "memory_gib": j.mem,
                              "price_per_hour": j.price, "spot_price_per_hour": j.spot}))
    out = pd.concat(rows, ignore_index=True)
    out["spot_interruption_rate"] = np.nan
    return out


def build_azure(data: Path) -> pd.DataFrame:
    z = pd.read_csv(data / SOURCES["azure"])
    z = z[z.Price.notna() & (z.Price > 0)]
    z = z.groupby(["Region", "InstanceType"], as_index=False).agg(
        acc=("AcceleratorName", "first"), n=("AcceleratorCount", "first"), vcpus=("vCPUs", "first"),
        mem=("MemoryGiB", "first"), price=("Price", "min"), spot=("SpotPrice", "min"))
    return pd.DataFrame({"cloud": "azure", "region": z.Region, "instance_type": z.InstanceType, "accelerator": z.acc,
                         "accelerator_count": z.n.fillna(0).astype(float), "vcpus": z.vcpus.astype(float),
                         "memory_gib": z.mem.astype(float), "price_per_hour": z.price, "spot_price_per_hour": z.spot,
                         "spot_interruption_rate": np.nan})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=shared_data_dir())
    args = ap.parse_args(argv)
    data = args.data_dir
    if data is None or not data.is_dir():
        ap.error("the public data folder is missing: pass --data-dir or set AIINFRA_DATA_DIR")
    for key, rel in SOURCES.items():
        if not (data / rel).exists():
            ap.error(f"source file for {key!r} not found: {data / rel}")
    inst = pd.concat([build_aws(data), build_gcp(data), build_azure(data)], ignore_index=True)
    inst["accelerator"] = inst.accelerator.where(inst.accelerator.notna() & (inst.accelerator != ""), None)
    inst.loc[inst.accelerator.isna(), "accelerator_count"] = 0.0
    inst = inst[inst.price_per_hour.notna() & (inst.price_per_hour > 0)]
    inst.loc[inst.spot_price_per_hour <= 0, "spot_price_per_hour"] = np.nan
    above = inst.spot_price_per_hour > inst.price_per_hour
    FIXES["spot_above_on_demand_dropped"] = int(above.sum())
    inst.loc[above, "spot_price_per_hour"] = np.nan
    inst = inst.sort_values(["cloud", "region", "instance_type"]).reset_index(drop=True)
    for c in ("price_per_hour", "spot_price_per_hour"):
        inst[c] = inst[c].round(5)
    acc = build_accelerators(data)
    OUT.mkdir(parents=True, exist_ok=True)
    inst.to_csv(OUT / "instances.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    acc.to_csv(OUT / "accelerators.csv", index=False, float_format="%.6g")
    snap = {
        "snapshot_date": SNAPSHOT_DATE,
        "price_dates": {"aws": "2025-11-30 (instances.vantage.sh)", "gcp": "2026-05-20 (SkyPilot-format catalog commit)",
                        "azure": "2026-05-20 (SkyPilot-format catalog commit)"},
        "rows": {c: int((inst.cloud == c).sum()) for c in ("aws", "gcp", "azure")},
        "accelerators": int(len(acc)),
        "sources": {k: {"path": v, "sha256": hashlib.sha256((data / v).read_bytes()).hexdigest()} for k, v in SOURCES.items()},
        "notes": [
            "AWS CPU-only instance prices are not in the source data; CPU pools and local pricing use GCP/Azure CPU types.",
            "spot_interruption_rate: AWS Spot Advisor band midpoint, fraction of instances interrupted per month; "
            "GCP and Azure publish none (empty here; the optimizer uses the AWS median for the same accelerator).",
            f"GCP TPU slices up to {MAX_TPU_CHIPS} chips, priced per slice-hour; accelerator_count is chips.",
            "GCP TPU prices above $20 per chip-hour in the SkyPilot-format file are placeholders (700.0); they are "
            "replaced by instance_catalogs/gcp_tpu_pricing_gpuhunt.json per-chip prices x chips, or dropped.",
            "TPU host vCPUs: per-chip figures of the TPU VM machine types (ct4p/ct5lp/ct5p/ct6e) from Google's TPU docs.",
            "Spot prices above the on-demand price of the same row are dropped (placeholders).",
        ],
        "fixes": FIXES,
    }
    (OUT / "snapshot.json").write_text(json.dumps(snap, indent=2) + "\n")
    print(f"wrote {len(inst)} instance rows and {len(acc)} accelerators to {OUT}")
    print((OUT / "instances.csv.gz").stat().st_size, "bytes instances.csv.gz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
