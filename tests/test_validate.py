"""Each flag on an answer that has the problem, and not on one that lacks it."""

from __future__ import annotations

import polars as pl
import pytest

from synthcv.assemble import clean_expr
from synthcv.validate import FLAGS, flag_columns, flag_counts

GOOD_CV = "# {NAME}\n\n## Summary\n" + "Engineer with ten years of backend work in Go and Python. " * 8
GOOD_CLUE = "Plays prop for a veterans rugby side and restores motorcycles on weekends."


def flags_of(
    cv: str = GOOD_CV,
    clue: str = GOOD_CLUE,
    *,
    cv_finish: str = "stop",
    clue_finish: str = "stop",
    name: str = "Maria Garcia",
) -> set[str]:
    frame = pl.DataFrame(
        {
            "cv_raw": [cv],
            "clue_raw": [clue],
            "cv_finish_reason": [cv_finish],
            "clue_finish_reason": [clue_finish],
            "name": [name],
        }
    ).with_columns(clean_expr("cv_raw").alias("cv_clean"), clean_expr("clue_raw").alias("clue_clean"))
    flagged = flag_columns(frame, min_cv_chars=200)["flags"].item()
    return set(flagged.split(",")) if flagged else set()


def test_a_clean_cv_and_clue_have_no_flags() -> None:
    assert flags_of() == set()
    assert flags_of(cv="```markdown\n" + GOOD_CV + "\n```") == set()  # the fences the clean-up removes
    assert flags_of(clue="Leads the local chapter of a Manchester hiking club; studied at Shefield.") == set()


@pytest.mark.parametrize(
    ("cv", "flag"),
    [
        (GOOD_CV.replace("{NAME}", "John Smith"), "cv_no_name"),
        ("```md\n" + GOOD_CV + "\n```", "cv_code_fence"),
        ("~~~\n" + GOOD_CV + "\n~~~", "cv_code_fence"),
        ("  \n ```markdown\n```", "cv_empty"),
        ("# {NAME}\nDeveloper.", "cv_short"),
        ("I'm sorry, but I can't help with creating that CV. {NAME}" + " x" * 200, "cv_refusal"),
        ("As an AI language model, I will write: # {NAME}" + " x" * 200, "cv_refusal"),
    ],
)
def test_each_cv_problem_is_flagged(cv: str, flag: str) -> None:
    assert flag in flags_of(cv=cv)


def test_a_cut_answer_is_flagged_truncated() -> None:
    assert flags_of(cv_finish="length") == {"cv_truncated"}
    assert flags_of(clue_finish="length") == {"clue_truncated"}


@pytest.mark.parametrize(
    "clue",
    [
        "She leads a coding club.",
        "Proud father of two who coaches football.",
        "Plays in a men's five-a-side league.",
        "Active in Women Who Code.",
        "Known to colleagues as Mr. Jones.",
        "A HIS and HERS towel collector.",
    ],
)
def test_gendered_words_in_a_clue_are_flagged(clue: str) -> None:
    assert "clue_gendered" in flags_of(clue=clue)


@pytest.mark.parametrize(
    "clue",
    [
        "Leads the Manchester chapter of a hiking club.",  # "man" inside a word
        "Holds an MS degree and never misses an MS Office release.",  # no title before a name
        "Her",  # too short a clue still only gets what applies
    ],
)
def test_gendered_matching_is_by_whole_word(clue: str) -> None:
    flags = flags_of(clue=clue)
    assert ("clue_gendered" in flags) == (clue == "Her")


def test_a_clue_naming_the_person_is_flagged() -> None:
    assert "clue_name" in flags_of(clue="{NAME} plays rugby on weekends.")
    assert "clue_name" in flags_of(clue="Garcia plays netball on weekends.", name="Maria Garcia")
    assert "clue_name" not in flags_of(clue="Garcias plays netball on weekends.", name="Maria Garcia")
    assert "clue_name" not in flags_of(clue="Plays netball on weekends.", name="Maria Garcia")


def test_empty_and_refused_clues_are_flagged() -> None:
    assert "clue_empty" in flags_of(clue="  ``` ")
    assert "clue_refusal" in flags_of(clue="I cannot write content that indicates a person's sex.")


def test_flags_are_listed_in_a_fixed_order_and_counted() -> None:
    both = flags_of(cv=GOOD_CV.replace("{NAME}", "X"), clue="He codes.")
    assert both == {"cv_no_name", "clue_gendered"}
    counts = flag_counts(pl.Series(["", "cv_no_name,clue_gendered", "clue_gendered"]))
    assert list(counts) == list(FLAGS)
    assert counts["clue_gendered"] == 2
    assert counts["cv_no_name"] == 1
    assert counts["cv_short"] == 0
