"""The offline provider: no network, no key; deterministic stand-in answers (see `offline_text`)."""

from __future__ import annotations

from ..offline_text import offline_answer
from ..plan import Job
from .base import Answer

OFFLINE_MODEL = "synthcv-offline"


class OfflineProvider:
    kind = "offline"

    async def complete(self, job: Job) -> Answer:
        content = offline_answer(job.stage, job.variant, job.key)
        # Whitespace split is a fair stand-in for a token count in a demonstration.
        return Answer(content, "stop", OFFLINE_MODEL, None, len(content.split()))

    async def aclose(self) -> None:
        return None
