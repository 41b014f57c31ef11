"""Tokens a request counts against a tokens-per-minute limit, as OpenAI counts them up front:
the prompt's tokens plus `max_tokens`.

The prompt count is an estimate (UTF-8 bytes / 4, rounded up, plus the chat format's per-message
overhead): exact counts need the model's tokenizer, whose tables cannot be fetched offline. For English
prose the estimate is within a few percent, and prompts are a small share of prompt + max_tokens.
"""

from __future__ import annotations

import math

from .prompts import Message

TOKENS_PER_MESSAGE = 3  # role and separators in the chat format
TOKENS_PER_REPLY = 3  # the assistant's reply is primed with these


def estimate_prompt_tokens(messages: list[Message]) -> int:
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + math.ceil(len(message["content"].encode()) / 4)
    return total


def request_tokens(messages: list[Message], max_tokens: int) -> int:
    return estimate_prompt_tokens(messages) + max_tokens
