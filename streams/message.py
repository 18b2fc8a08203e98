"""The base of every topic message."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Message"]


class Message(BaseModel):
    """Unknown fields are an error, not silently dropped. ``contract_version``: the version
    of the message's published JSON Schema (``schemas/<name>.v<version>.json``)."""

    model_config = ConfigDict(extra="forbid")

    contract_version: ClassVar[int] = 1
