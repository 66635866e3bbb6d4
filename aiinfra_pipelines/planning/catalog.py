"""The hardware catalog: real instance types and their prices, joined with accelerator specs.

The catalog is data (``aiinfra_pipelines/data/catalog/``), built by ``scripts/refresh_catalog.py``
from the public catalog files; see PROVENANCE.md there. Loading is cached per path.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel

from aiinfra_pipelines.paths import PACKAGE_DATA

CATALOG_DIR = PACKAGE_DATA / "catalog"
SPEC_COLUMNS = ["peak_tflops_bf16", "fp32_tflops", "hbm_gib", "hbm_bandwidth_gbps", "tdp_w", "sm_count",
                "clock_ghz", "intra_node_bandwidth_gbps"]
REQUIRED = ["cloud", "region", "instance_type", "accelerator", "accelerator_count", "vcpus", "memory_gib",
            "price_per_hour", "spot_price_per_hour", "spot_interruption_rate"]


class CatalogError(ValueError):
    """A catalog file that is missing or malformed."""


class CatalogEntry(BaseModel):
    cloud: str
    region: str
    instance_type: str
    vcpus: float | None = None
    memory_gib: float | None = None
    price_per_hour: float
    spot_price_per_hour: float | None = None
    spot_interruption_rate: float | None = None
    accelerator: str | None = None
    accelerator_count: float = 0.0

    @classmethod
    def from_row(cls, row) -> "CatalogEntry":
        def clean(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
        d = {k: clean(row[k]) for k in cls.model_fields if k in row}
        d["accelerator_count"] = d.get("accelerator_count") or 0.0
        return cls(**d)


class Catalog:
    """The instance table (``frame``) with accelerator specs joined in, plus snapshot and provenance."""

    def __init__(self, frame: pd.DataFrame, accelerators: pd.DataFrame, snapshot: dict, path: Path):
        self.frame = frame
        self.accelerators = accelerators
        self.snapshot = snapshot.get("snapshot_date", "unknown")
        self.snapshot_info = snapshot
        self.path = path
        self.provenance = {
            "catalog_dir": str(path),
            "snapshot_date": self.snapshot,
            "price_dates": snapshot.get("price_dates", {}),
            "sources": {k: v["path"] for k, v in snapshot.get("sources", {}).items()},
        }

    def __len__(self) -> int:
        return len(self.frame)

    def filter(self, accelerator=None, cloud=None, max_price=None, regions=None, spot: bool = False) -> pd.DataFrame:
        """Rows matching all given filters; accelerator/cloud/regions accept one name or a list (case-insensitive)."""
        df = self.frame
        mask = np.ones(len(df), dtype=bool)
        if accelerator is not None:
            names = {a.lower() for a in ([accelerator] if isinstance(accelerator, str) else accelerator)}
            if "cpu" in names or "none" in names:
                mask &= df.accelerator.isna().to_numpy() | df.accelerator.str.lower().isin(names).to_numpy()
            else:
                mask &= df.accelerator.str.lower().isin(names).to_numpy()
        if cloud is not None:
            clouds = {c.lower() for c in ([cloud] if isinstance(cloud, str) else cloud)}
            mask &= df.cloud.isin(clouds).to_numpy()
        if regions:
            mask &= df.region.isin(list([regions] if isinstance(regions, str) else regions)).to_numpy()
        price = df.spot_price_per_hour if spot else df.price_per_hour
        if max_price is not None:
            mask &= (price <= max_price).to_numpy()
        return df[mask]

    def accelerator_spec(self, name: str) -> dict:
        row = self.accelerators[self.accelerators.accelerator.str.lower() == name.lower()]
        if row.empty:
            raise KeyError(f"accelerator {name!r} has no spec row in {self.path / 'accelerators.csv'}")
        return row.iloc[0].to_dict()


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Catalog:
    inst_file, acc_file, snap_file = path / "instances.csv.gz", path / "accelerators.csv", path / "snapshot.json"
    for f in (inst_file, acc_file, snap_file):
        if not f.exists():
            raise CatalogError(f"catalog file not found: {f} (run scripts/refresh_catalog.py)")
    inst = pd.read_csv(inst_file, dtype={"accelerator": "string", "cloud": "category", "region": "string",
                                         "instance_type": "string"})
    missing = [c for c in REQUIRED if c not in inst.columns]
    if missing:
        raise CatalogError(f"{inst_file}: missing columns {missing}")
    inst["cloud"] = inst.cloud.astype(str)
    inst["accelerator"] = inst.accelerator.astype(object).where(inst.accelerator.notna(), None)
    acc = pd.read_csv(acc_file)
    frame = inst.merge(acc[["accelerator"] + SPEC_COLUMNS], on="accelerator", how="left")
    snapshot = json.loads(snap_file.read_text())
    frame["snapshot_date"] = snapshot.get("snapshot_date")
    return Catalog(frame, acc, snapshot, path)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The packaged catalog (or one built into ``path`` by scripts/refresh_catalog.py); cached."""
    return _load(Path(path).resolve() if path else CATALOG_DIR)


def local_equivalent(vcpus: int, memory_gib: float, catalog: Catalog | None = None) -> CatalogEntry:
    """The cheapest CPU-only catalog type with at least this many vCPUs and this much memory.

    "Nearest" first: the smallest type that covers both (by vCPU, then memory), then the cheapest of those.
    AWS has no CPU-only prices in the source data, so the match comes from GCP or Azure.
    """
    cat = catalog or load_catalog()
    df = cat.frame
    cpu = df[df.accelerator.isna() & df.vcpus.notna() & df.memory_gib.notna()]
    fit = cpu[(cpu.vcpus >= vcpus) & (cpu.memory_gib >= memory_gib)]
    if fit.empty:
        fit = cpu[cpu.vcpus == cpu.vcpus.max()]
    fit = fit.sort_values(["vcpus", "memory_gib", "price_per_hour", "cloud", "region", "instance_type"])
    first = fit.iloc[0]
    same = fit[(fit.vcpus == first.vcpus) & (fit.memory_gib == first.memory_gib)]
    return CatalogEntry.from_row(same.sort_values(["price_per_hour", "cloud", "region", "instance_type"]).iloc[0])
