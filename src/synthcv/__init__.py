"""synthcv: synthetic CV datasets for hiring-bias and fairness research, generated with LLMs.

>>> import synthcv
>>> df = synthcv.run(synthcv.RunConfig(size=500, provider="offline"))
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .api import RunResult, arun, generate, run
from .assemble import COLUMNS, assemble
from .config import RunConfig, load_config
from .errors import SynthcvError

try:
    __version__ = version("synthcv")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "COLUMNS",
    "RunConfig",
    "RunResult",
    "SynthcvError",
    "__version__",
    "arun",
    "assemble",
    "generate",
    "load_config",
    "run",
]
