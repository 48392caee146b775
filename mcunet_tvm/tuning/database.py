"""The tuning database: instruction counts measured per (target, layer, schedule), as JSON.

One record per distinct layer (its op descriptor, hashed) and target holds
every schedule measured for it and the best one. Builds read it to pick each
layer's schedule (:meth:`TuningDatabase.lookup`); ``--tune`` adds to it. The
file is written atomically, so an interrupted tuning run never leaves a
half-written database.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import McunetError
from ..kernels.simd import SimdConfig
from ..ops import OpDesc

#: 2: layers keyed by their op descriptor alone (the kernel choice is no longer part of it)
VERSION = 2


def layer_key(target: str, op: OpDesc) -> str:
    return f"{target}:{hashlib.sha1(op.to_json().encode()).hexdigest()[:20]}"


class TuningDatabase:
    """Measured schedules, keyed by target and layer."""

    def __init__(self, path: Path | None = None, records: dict | None = None) -> None:
        self.path = path
        self.records: dict[str, dict] = records or {}

    @classmethod
    def load(cls, path: Path) -> TuningDatabase:
        """The database at ``path`` (empty if the file does not exist)."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')}, expected {VERSION}")
            return cls(path, data["records"])
        except (ValueError, KeyError, AttributeError) as exc:
            raise McunetError(
                f"the tuning database cannot be read: {exc}", where=str(path),
                hint="delete it (it only caches measurements) or pass another --tune-db",
            ) from None

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"version": VERSION, "records": self.records}, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def measured(self, target: str, op: OpDesc) -> dict[str, int]:
        """schedule JSON -> instructions, for every schedule measured on this layer."""
        return dict(self.records.get(layer_key(target, op), {}).get("measured", {}))

    def record(self, target: str, op: OpDesc, config: SimdConfig, instructions: int) -> None:
        rec = self.records.setdefault(layer_key(target, op), {"op": op.to_json(), "measured": {}})
        rec["measured"][config.to_json()] = int(instructions)
        rec["best"] = min(rec["measured"], key=rec["measured"].get)

    def best(self, target: str, op: OpDesc) -> SimdConfig | None:
        rec = self.records.get(layer_key(target, op))
        return SimdConfig(**json.loads(rec["best"])) if rec and "best" in rec else None

    def lookup(self, target: str):
        """A per-layer schedule function for ``compile_relax(schedule=...)``."""
        return lambda op: self.best(target, op)

    def samples(self, target: str) -> list[tuple[OpDesc, SimdConfig, int]]:
        """Every measurement for ``target``: the cost model's training data."""
        from ..ops import op_from_json

        rows = []
        for key, rec in self.records.items():
            if key.startswith(target + ":"):
                op = op_from_json(rec["op"])
                rows += [(op, SimdConfig(**json.loads(c)), n) for c, n in rec["measured"].items()]
        return rows
