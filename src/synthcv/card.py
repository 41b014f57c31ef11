"""`DATASET_CARD.md`: the dataset explained to whoever receives it, in the style of a Hugging Face card.

Written from the manifest (so it states the same figures) and the dataset's labels: what the data is,
that its labels are biased on purpose, what it is for and not for, its columns, how it was generated,
the injected callback table beside the measured one, where the names come from, and what was flagged.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .config import RACES, RunConfig
from .fairness import rates_by_sex_and_quality
from .prompts import QUALITIES, SEXES
from .validate import FLAGS

CARD_NAME = "DATASET_CARD.md"

COLUMN_DOCS = {
    "cv": "the CV with its clue and the name substituted: what a screening model reads",
    "quality": "`high` / `low`: which prompt wrote the CV",
    "sex": "`man` / `woman`",
    "clue": "a paragraph hinting at the person's sex (women's end with the explicit marker)",
    "cv_with_clue": "CV + blank line + clue, still with the `{NAME}` placeholder",
    "callback": "0 / 1: the simulated, deliberately biased recruiter's decision",
    "race": "White / Black / Asian / Hispanic, drawn at random",
    "name": "a name drawn from the list for the row's race and sex",
    "id": "row number",
    "cv_sample, clue_sample": "sample index (API seed) of the CV and the clue",
    "model": "the model that wrote the CV, as the API reported it",
    "cv_finish_reason, clue_finish_reason": "`stop`, or `length` when cut at max_tokens",
    "flags": "problems the checks found in the CV or clue; empty when clean",
    "cv_redraw, clue_redraw": "0, or which new sample replaced a flagged answer",
}


def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "n>1M"


def callback_table(labels: pl.DataFrame, config: RunConfig) -> list[str]:
    measured = rates_by_sex_and_quality(labels)
    lines = [
        "| sex | quality | injected P(callback) | measured rate | rows |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for sex in SEXES:
        for quality in QUALITIES:
            cell = measured.get((sex, quality))
            shown, n = (f"{cell.rate:.3f}", cell.rows) if cell is not None else ("-", 0)
            injected = config.callback_probability.of(sex, quality)
            lines.append(f"| {sex} | {quality} | {injected:.2f} | {shown} | {n:,} |")
    return lines


def _names_source(config: RunConfig) -> str:
    if config.names_men is None and config.names_women is None:
        return (
            "synthcv's default lists, derived from the US Census Bureau's 2020 first-name and surname tables "
            "(100 names per race and sex; method in synthcv's `src/synthcv/data/NAMES.md`). Race and sex are "
            "given by the Census only as separate margins per name, the cut-offs are choices, surnames chosen "
            "for the highest share of a race signal it more strongly than they are common, and people of two "
            "or more races and American Indian / Alaska Native people are not represented."
        )
    return (
        f"name files given by the user: men `{config.names_men}`, women `{config.names_women}` (if these are "
        "the workshop's lists: Bloomberg's 2024 study, Apache-2.0). Their provenance and limits are those of "
        "their source."
    )


def render_card(config: RunConfig, manifest: dict[str, Any], labels: pl.DataFrame) -> str:
    rows = manifest["counts"]["rows"]
    models = ", ".join(f"`{m}` ({n:,} answers)" for m, n in manifest["models_reported"].items()) or "none"
    flags = manifest["counts"]["flags"]
    flagged = [f"| `{name}` | {FLAGS[name]} | {count:,} |" for name, count in flags.items()]
    races = labels.group_by("race").len()
    race_counts = {race: n for race, n in races.iter_rows()}
    weights = config.race_weights
    total_weight = sum(weights.values())
    cost = manifest["cost_usd"]
    files = "\n".join(
        f"- `{f['name']}` ({f['bytes']:,} bytes, sha256 `{f['sha256'][:16]}…`)" for f in manifest["files"]
    )
    lines = [
        "---",
        "pretty_name: Synthetic CVs with deliberately biased callbacks (synthcv)",
        "language:",
        "- en",
        "license: other",
        "task_categories:",
        "- text-classification",
        "tags:",
        "- synthetic",
        "- fairness",
        "- bias",
        "- hiring",
        "size_categories:",
        f"- {_size_category(rows)}",
        "---",
        "",
        "# Synthetic CVs with deliberately biased callbacks",
        "",
        "## Dataset summary",
        "",
        f"{rows:,} synthetic software-engineer CVs written by a language model, each joined with a short paragraph "
        "that hints at the person's sex (a *clue*), a randomly drawn race and a name to match, and a `callback` "
        "label from a simulated recruiter. It reproduces, at scale, the dataset of the PyData London 2025 "
        "workshop *How To Measure And Mitigate Unfair Bias in ML Models*, and was generated with "
        f"synthcv {manifest['synthcv_version']}.",
        "",
        *(
            [
                "**These CVs and clues are synthcv's offline stand-ins, built from templates to try the pipeline: "
                "not model output, and not fit for research.**",
                "",
            ]
            if config.provider == "offline"
            else []
        ),
        "## ⚠ The labels are biased on purpose",
        "",
        "The recruiter that made `callback` was built to discriminate: it calls men back far more often than "
        "women with CVs of the same quality (table below). Race has no effect on the label by construction, "
        "but the name and the CV text still carry it. A model trained on `callback` learns this bias; that is "
        "the point of the dataset, which exists to measure and mitigate such bias.",
        "",
        "## Uses",
        "",
        "**Intended:** teaching and research on fairness in machine learning: measuring disparate impact, "
        "demographic parity and related metrics; testing bias-mitigation methods (reweighing, threshold "
        "adjustment, adversarial debiasing); studying how text models pick up sex and race from proxies.",
        "",
        "**Out of scope:** training, tuning or validating any system that screens, ranks or scores real "
        "people; drawing conclusions about real applicants, real recruiters or any group; treating the CVs as "
        "real work histories or the names as a statement about any person.",
        "",
        "## Dataset structure",
        "",
        "| column | meaning |",
        "| --- | --- |",
        *[f"| `{name}` | {doc} |" for name, doc in COLUMN_DOCS.items()],
        "",
        "Files:",
        "",
        files,
        "",
        "Read the Feather file with `pandas.read_feather(...)` or `polars.read_ipc(...)`.",
        "",
        "## How it was generated",
        "",
        f"- Provider `{config.provider}`, model `{config.model}` (reported by the API: {models}), temperature "
        f"{config.temperature}, max_tokens {config.max_tokens}; one request per CV and per clue, sample *i* with "
        "API seed *i*.",
        f"- Size {config.size:,}: share high quality {config.percent_high}, share men within each quality "
        f"{config.percent_male}; seed {config.seed} for every random draw (callbacks, races, names).",
        "- The workshop notebook's prompts (hashes of each template are in `manifest.json`). Answers are cleaned "
        "as the notebook does; each woman's clue ends with the explicit marker "
        f"{config.explicit_marker!r}" + ("" if config.explicit_marker else " (disabled)") + ".",
        "",
        "### Injected and measured callbacks",
        "",
        *callback_table(labels, config),
        "",
        "### Race and names",
        "",
        "Race is drawn at random with weights "
        + ", ".join(f"{race} {weights.get(race, 0) / total_weight:.2f}" for race in RACES)
        + "; counts: "
        + ", ".join(f"{race} {race_counts.get(race, 0):,}" for race in RACES)
        + ".",
        "",
        f"Names: {_names_source(config)}",
        "",
        "## Quality checks",
        "",
        f"{manifest['counts']['flagged_rows']:,} of {rows:,} rows carry at least one flag (`flags` column):",
        "",
        "| flag | meaning | rows |",
        "| --- | --- | ---: |",
        *flagged,
        "",
        "## Cost",
        "",
        f"{manifest['tokens']['prompt']:,} prompt and {manifest['tokens']['completion']:,} completion tokens "
        "over every answer bought for this dataset: "
        + (
            f"${cost['online']:.4f} at online prices, ${cost['batch']:.4f} at batch prices"
            if cost["online"] is not None
            else "price unknown"
        )
        + f" ({cost['prices']}).",
        "",
        "## Limitations",
        "",
        "- The CVs are model output: fluent, often generic, and shaped by the model's own biases about who "
        "writes what kind of CV. High and low quality differ by design (years, polish, skills).",
        "- The clues signal sex through stereotyped hobbies and affiliations, as the prompt asks; they encode "
        "stereotypes, which is part of what the dataset lets one study. Sex is binary here.",
        "- The explicit marker makes sex trivially recoverable from the text for women.",
        "- Race is assigned at random, independently of the CV, and conveyed only by the name.",
        "",
        "## Provenance",
        "",
        "`manifest.json` beside this card records the synthcv version, the full effective config, the prompt "
        "hashes, the models reported, counts, tokens, cost and each file's sha256.",
        "",
    ]
    return "\n".join(lines)
