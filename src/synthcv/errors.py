"""Every error synthcv raises on purpose, each saying when it is raised.

The CLI turns any `SynthcvError` into a one-line message and its exit code: 2 for bad input, 1
(`RunIncomplete`), 3 (`BudgetReached`), 130 (`Interrupted`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SynthcvError(Exception):
    """Base class: the message names the problem and how to fix it."""

    exit_code = 2


class ConfigError(SynthcvError):
    """A setting is invalid: bad value, unknown key, malformed TOML, unreadable config file."""


class NamesError(SynthcvError):
    """A name file is unreadable, is not a JSON object of lists, lacks a race key or has an empty list."""


class CredentialsError(SynthcvError):
    """The openai provider was chosen but no API key is set, or the server rejected the key (401/403)."""


class FatalApiError(SynthcvError):
    """The server refused the request in a way no retry can fix: unknown model (404), bad request (400)."""


class StoreError(SynthcvError):
    """The cache file cannot be opened or written: not SQLite, newer schema, read-only, disk full."""


class OutputError(SynthcvError):
    """The output directory cannot be created or written."""


class RunIncomplete(SynthcvError):
    """Some planned answers are missing after the run (failed jobs, or the run was interrupted)."""

    exit_code = 1


class Interrupted(SynthcvError):
    """The user stopped the run (Ctrl-C / SIGTERM); what arrived was stored."""

    exit_code = 130


class BudgetReached(SynthcvError):
    """The next request could take the dataset's cost past `--budget`; what arrived was stored."""

    exit_code = 3


class ApiUnavailable(SynthcvError):
    """The Batch API did not answer after retries; what was submitted is recorded and can be collected later."""

    exit_code = 1
