"""Small helpers that turn domain results into Dagster metadata the UI shows and plots."""


import json
import math
from typing import Any, Iterable

import dagster as dg
from pydantic import BaseModel


def as_json(model: BaseModel | dict) -> dg.MetadataValue:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return dg.MetadataValue.json(json.loads(json.dumps(data, default=str)))


def numeric(values: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    """Numbers become float metadata (plotted across partitions in the UI); None/NaN are left out."""
    out: dict[str, dg.MetadataValue] = {}
    for k, v in values.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            out[k] = dg.MetadataValue.float(float(v))
    return out


def table(rows: Iterable[dict], columns: list[str] | None = None) -> dg.MetadataValue:
    rows = list(rows)
    if not rows:
        return dg.MetadataValue.md("_(none)_")
    columns = columns or list(rows[0].keys())
    schema = dg.TableSchema(columns=[dg.TableColumn(c, _kind(rows, c)) for c in columns])
    records = [dg.TableRecord({c: _cell(r.get(c)) for c in columns}) for r in rows]
    return dg.MetadataValue.table(records, schema=schema)


def _kind(rows: list[dict], col: str) -> str:
    for r in rows:
        v = r.get(col)
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if v is not None:
            return "string"
    return "string"


def _cell(v: Any):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        # six significant digits: what a person reads in the UI; the exact value is in the JSON entry
        return None if math.isnan(v) else float(f"{v:.6g}")
    return json.dumps(v, default=str)
