"""Backends behind one small interface: `complete(job) -> Answer`, raising `TransientError` to retry."""

from __future__ import annotations

import os

from ..config import RunConfig
from ..errors import CredentialsError
from .base import Answer, Provider, TransientError

__all__ = ["Answer", "Provider", "TransientError", "make_provider"]


def make_provider(config: RunConfig) -> Provider:
    """The provider the config names; the API key comes from the environment only, never from a file."""
    if config.provider == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    api_key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not api_key:
        raise CredentialsError(
            "OPENAI_API_KEY is not set; export it for the openai provider, or use --provider offline"
        )
    from .openai import OpenAIProvider

    base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
    return OpenAIProvider(config, api_key=api_key, base_url=base_url)
