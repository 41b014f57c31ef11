"""Tokens a request counts against a tokens-per-minute limit, as OpenAI counts them up front:
the prompt's tokens in the chat format plus `max_tokens`.

Prompt tokens are counted with tiktoken, the tokenizer OpenAI publishes, for the models it knows.
tiktoken downloads each table once (to `TIKTOKEN_CACHE_DIR` if set); where the model is unknown to it,
or its table cannot be loaded (offline, say), the count is estimated as UTF-8 bytes / 4 and `note`
says so. Prompts are a small share of prompt + max_tokens, so the estimate costs little precision.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import tiktoken

from .prompts import Message

TOKENS_PER_MESSAGE = 3  # separators around each message in the chat format
TOKENS_PER_REPLY = 3  # the assistant's reply is primed with these

Encode = Callable[[str], int]


def _estimate(text: str) -> int:
    return math.ceil(len(text.encode()) / 4)


@functools.lru_cache(maxsize=8)
def _encoding(name: str) -> tiktoken.Encoding | str:
    """The named tiktoken encoding, or why it could not be loaded."""
    try:
        return tiktoken.get_encoding(name)
    except Exception as error:  # network, disk or table errors alike: all mean "estimate instead"
        return f"{type(error).__name__}"


class TokenCounter:
    """Counts the prompt tokens of chat requests for one model."""

    def __init__(self, model: str, encoding: tiktoken.Encoding | None = None, *, use_tiktoken: bool = True) -> None:
        self.model = model
        self.note = ""
        self._count: Encode = _estimate
        self._encoding: tiktoken.Encoding | None = None
        if encoding is None and not use_tiktoken:
            self.note = "prompt tokens are estimated (bytes / 4)"
            return
        if encoding is None:
            try:
                name = tiktoken.encoding_name_for_model(model)
            except KeyError:
                self.note = f"model {model!r} is unknown to tiktoken: prompt tokens are estimated (bytes / 4)"
                return
            loaded = _encoding(name)
            if isinstance(loaded, str):
                self.note = (
                    f"tiktoken could not load its {name} table ({loaded}): prompt tokens are estimated "
                    "(bytes / 4); with network access it downloads it once, or set TIKTOKEN_CACHE_DIR"
                )
                return
            encoding = loaded
        self.encoding = encoding.name
        self._encoding = encoding
        encode = encoding.encode_ordinary
        self._count = lambda text: len(encode(text))

    @property
    def exact(self) -> bool:
        return not self.note

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        total = TOKENS_PER_REPLY
        for message in messages:
            total += TOKENS_PER_MESSAGE + self._count(message["role"]) + self._count(message["content"])
        return total

    def text_tokens(self, text: str) -> int:
        """Tokens of a bare text, such as an answer."""
        return self._count(text)

    def truncate(self, text: str, tokens: int) -> str:
        """The longest prefix of `text` within `tokens` (used by the fake server to honour max_tokens)."""
        if self._encoding is not None:
            return self._encoding.decode(self._encoding.encode_ordinary(text)[:tokens])
        return text.encode()[: tokens * 4].decode(errors="ignore")

    def request_tokens(self, messages: Sequence[Message], max_tokens: int) -> int:
        return self.prompt_tokens(messages) + max_tokens
