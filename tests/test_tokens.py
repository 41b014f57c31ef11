"""Prompt tokens as OpenAI counts them for tokens/min: tiktoken when it can, an estimate that says so."""

from __future__ import annotations

import pytest
import tiktoken

from synthcv import tokens
from synthcv.prompts import Message
from synthcv.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, TokenCounter

MESSAGES: list[Message] = [
    {"role": "system", "content": "You write CVs."},
    {"role": "user", "content": "Write one for {NAME}, héllo."},
]


def byte_encoding() -> tiktoken.Encoding:
    """A real tiktoken encoding whose tokens are single bytes, so the expected count is plain arithmetic."""
    return tiktoken.Encoding(
        name="bytes", pat_str=r"[\s\S]", mergeable_ranks={bytes([i]): i for i in range(256)}, special_tokens={}
    )


def test_chat_format_is_counted_per_message_with_roles() -> None:
    counter = TokenCounter("any", encoding=byte_encoding())
    assert counter.exact
    expected = TOKENS_PER_REPLY + sum(
        TOKENS_PER_MESSAGE + len(m["role"].encode()) + len(m["content"].encode()) for m in MESSAGES
    )
    assert counter.prompt_tokens(MESSAGES) == expected
    assert counter.request_tokens(MESSAGES, 1000) == expected + 1000


def test_a_model_tiktoken_does_not_know_is_estimated_and_says_so() -> None:
    counter = TokenCounter("my-local-llama")
    assert not counter.exact
    assert "unknown to tiktoken" in counter.note
    # bytes / 4, rounded up, per text
    assert (
        counter.prompt_tokens([{"role": "user", "content": "x" * 40}]) == TOKENS_PER_REPLY + TOKENS_PER_MESSAGE + 1 + 10
    )


def test_a_table_that_cannot_be_loaded_is_estimated_and_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str) -> tiktoken.Encoding:
        raise ConnectionError(f"cannot download {name}")

    tokens._encoding.cache_clear()
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    try:
        counter = TokenCounter("gpt-4o-mini")
    finally:
        tokens._encoding.cache_clear()
    assert not counter.exact
    assert "o200k_base" in counter.note
    assert "TIKTOKEN_CACHE_DIR" in counter.note
    assert counter.prompt_tokens(MESSAGES) > 0


def test_the_offline_provider_never_reaches_for_tiktoken() -> None:
    assert not TokenCounter("gpt-4o-mini", use_tiktoken=False).exact
