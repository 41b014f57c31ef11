from __future__ import annotations

from pathlib import Path

import pytest

from synthcv.config import RunConfig, load_config
from synthcv.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_the_workshops() -> None:
    config = RunConfig()
    assert (config.model, config.temperature, config.max_tokens) == ("gpt-4o-mini", 0.99, 1000)
    assert config.explicit_marker == "\nwoman"
    assert config.callback_probability.of("man", "high") == 0.99
    assert config.callback_probability.of("man", "low") == 0.40
    assert config.callback_probability.of("woman", "high") == 0.30
    assert config.callback_probability.of("woman", "low") == 0.00
    assert config.cache_path == Path("data/output/synthcv-cache.sqlite")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"size": -5}, "size"),
        ({"size": 0}, "size"),
        ({"provider": "anthropic"}, "provider"),
        ({"colour": "blue"}, "unknown setting 'colour'"),
        ({"callback_probability": {"man": {"high": 1.5, "low": 0.4}}}, "not a probability"),
        ({"callback_probability": {"woman": {"high": 0.3}}}, "woman.low is missing"),
        ({"race_weights": {"Martian": 1.0}}, "unknown race 'Martian'"),
        ({"race_weights": {"White": -1.0}}, "race_weights must be >= 0"),
        ({"percent_male": 1.2}, "percent_male"),
        ({"formats": []}, "formats is empty"),
    ],
)
def test_invalid_settings_name_the_problem(settings: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(None, settings)
    assert "\n" not in str(error.value)


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('size = 40\nseed = 3\nprovider = "offline"\nout = "exports"\n')
    config = load_config(path, {"size": 10, "seed": None})
    assert (config.size, config.seed, config.provider) == (10, 3, "offline")
    assert config.out == tmp_path / "exports"  # relative to the config file


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("size = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_workshop_example_config_reproduces_the_notebook_run() -> None:
    config = load_config(REPO / "data" / "configs" / "workshop.toml")
    assert config.size == 12
    assert config == RunConfig(size=12, out=config.out, provider=config.provider)


def test_prompts_are_overridable() -> None:
    config = load_config(None, {"prompts": {"high_years": "20 to 30"}})
    assert "20 to 30 years" in config.prompts.cv_messages("high")[0]["content"]
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(None, {"prompts": {"typo": "x"}})
