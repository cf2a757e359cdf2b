"""What ``nnpipe serve`` serves and within which limits (from ``params.yaml``'s ``serve``
section and the command line)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nnpipe.serving.auth import route_is_open


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_uri: str
    models: dict[str, str]  # slot (a domain's Unit.slot) -> registered model name
    alias: str = "champion"
    poll_seconds: float = Field(30.0, gt=0)
    api_key: str | None = None
    public_routes: tuple[Literal["models", "metrics", "docs"], ...] = ()
    max_request_bytes: int = Field(10 * 2**20, gt=0)
    max_batch: int = Field(256, gt=0)
    max_pixels: int = Field(4096 * 4096, gt=0)
    max_side: int = Field(4096, gt=0)
    max_batch_pixels: int = Field(4 * 4096 * 4096, gt=0)
    max_bars: int = Field(10_000, gt=0)
    decode_threads: int = Field(2, ge=1)
    threads: int = Field(1, ge=1)
    # where every prediction is logged (nnpipe.monitoring.prediction_log); None: nowhere
    prediction_log: str | None = None
    log_images: bool = False

    def is_open(self, path: str) -> bool:
        """Whether ``path`` answers without the API key (always, when no key is set)."""
        return route_is_open(self.api_key, self.public_routes, path)
