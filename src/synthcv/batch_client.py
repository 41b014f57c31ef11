"""The Batch API's calls through the openai SDK: upload a file, create, read, list and cancel batches,
and stream a result file's lines.

These are a handful of calls per thousands of requests, so the SDK's convenience costs nothing here
(unlike on the online hot path, see providers/openai.py), and the SDK's own retries (with back-off,
honouring retry-after) are left on for them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import openai

from .config import RunConfig
from .errors import ApiUnavailable, CredentialsError, FatalApiError

ENDPOINT: Final = "/v1/chat/completions"
SDK_RETRIES = 4


def _translate(error: openai.OpenAIError, doing: str) -> Exception:
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return CredentialsError(f"the API refused the key while {doing} ({error.status_code}); check OPENAI_API_KEY")
    if isinstance(error, openai.NotFoundError | openai.BadRequestError | openai.UnprocessableEntityError):
        return FatalApiError(f"the Batch API refused {doing}: {error.message}")
    return ApiUnavailable(
        f"the Batch API did not answer while {doing} ({type(error).__name__}); what was submitted is recorded: "
        "run the same command again, or `synthcv batch collect`, to resume"
    )


class BatchClient:
    def __init__(self, config: RunConfig) -> None:
        api_key = os.environ.get("OPENAI_API_KEY", "").strip()
        if not api_key:
            raise CredentialsError(
                "OPENAI_API_KEY is not set; batch mode needs it (the offline provider has no batches)"
            )
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=SDK_RETRIES, timeout=600)

    async def aclose(self) -> None:
        await self._client.close()

    async def upload(self, path: Path) -> str:
        try:
            with path.open("rb") as handle:
                uploaded = await self._client.files.create(file=(path.name, handle), purpose="batch")
        except openai.OpenAIError as error:
            raise _translate(error, f"uploading {path.name}") from None
        return uploaded.id

    async def create(self, file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        try:
            batch = await self._client.batches.create(
                input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
            )
        except openai.OpenAIError as error:
            raise _translate(error, f"creating a batch from {file_id}") from None
        return batch.model_dump()

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        try:
            batch = await self._client.batches.retrieve(batch_id)
        except openai.OpenAIError as error:
            raise _translate(error, f"reading batch {batch_id}") from None
        return batch.model_dump()

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        try:
            batch = await self._client.batches.cancel(batch_id)
        except openai.OpenAIError as error:
            raise _translate(error, f"cancelling batch {batch_id}") from None
        return batch.model_dump()

    async def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The account's most recent batches (to find one created but not recorded before a crash)."""
        found: list[dict[str, Any]] = []
        try:
            async for batch in self._client.batches.list(limit=min(limit, 100)):
                found.append(batch.model_dump())
                if len(found) >= limit:
                    break
        except openai.OpenAIError as error:
            raise _translate(error, "listing batches") from None
        return found

    async def lines(self, file_id: str) -> AsyncIterator[str]:
        """A result file's lines, streamed: an output file of 50,000 CVs is a few hundred MB."""
        try:
            async with self._client.files.with_streaming_response.content(file_id) as response:
                async for line in response.iter_lines():
                    if line.strip():
                        yield line
        except openai.OpenAIError as error:
            raise _translate(error, f"downloading {file_id}") from None
