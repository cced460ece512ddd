"""Typed records that cross a boundary as JSON (the store, the job table, `--json`).

A record is a frozen dataclass: code between the layers reads its fields by name. It becomes JSON only where
it is written (`to_json`) and is read back with `from_json`, which ignores keys it does not know and fills
fields an older writer left out with their defaults. It also reads as the JSON object it is stored as
(`record["top1"]`, `record.get("scoring")`, `dict(record)`), for code that handles any stored object.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="JsonRecord")


class JsonRecord(Mapping):
    omit_none: ClassVar[bool] = False  # leave fields that are None out of the JSON

    @classmethod
    def from_json(cls: type[R], d: Mapping | None) -> R:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in (d or {}).items() if k in names})

    def to_json(self) -> dict[str, Any]:
        return dict(self)

    def _json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {k: v for k, v in out.items() if v is not None} if self.omit_none else out

    def __getitem__(self, key: str) -> Any:
        return self._json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json())

    def __len__(self) -> int:
        return len(self._json())
