"""The base of every results record: immutable, and unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Rec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
