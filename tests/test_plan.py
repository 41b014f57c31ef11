from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from synthcv.config import RunConfig
from synthcv.plan import canonical_json, iter_jobs, layout, planned_counts, split_counts


def test_notebook_size_splits_three_per_cell() -> None:
    assert split_counts(12, 0.5, 0.5) == {
        ("high", "man"): 3,
        ("high", "woman"): 3,
        ("low", "man"): 3,
        ("low", "woman"): 3,
    }


def test_odd_size_rounds_half_up_and_keeps_every_cv() -> None:
    counts = split_counts(13, 0.5, 0.5)
    assert sum(counts.values()) == 13
    assert counts[("high", "man")] + counts[("high", "woman")] == 7  # 6.5 rounds up to high
    assert counts[("high", "man")] == 4  # 3.5 rounds up to men


@given(size=st.integers(1, 5000), high=st.floats(0, 1), male=st.floats(0, 1))
def test_cells_always_add_up_to_size(size: int, high: float, male: float) -> None:
    counts = split_counts(size, high, male)
    assert sum(counts.values()) == size
    assert all(n >= 0 for n in counts.values())


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 300), high=st.sampled_from([0.3, 0.5, 0.7]), male=st.sampled_from([0.25, 0.5, 0.6]))
def test_a_larger_run_plans_a_superset(size: int, high: float, male: float) -> None:
    small = RunConfig(size=size, percent_high=high, percent_male=male)
    large = RunConfig(size=size + 1, percent_high=high, percent_male=male)
    assert {j.key for j in iter_jobs(small)} <= {j.key for j in iter_jobs(large)}


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(1, 200),
    concurrency=st.integers(1, 5000),
    rpm=st.none() | st.integers(1, 10**6),
    tpm=st.none() | st.integers(2000, 10**9),
    attempts=st.integers(1, 20),
)
def test_property_same_request_settings_same_keys_whatever_the_run_settings(
    size: int, concurrency: int, rpm: int | None, tpm: int | None, attempts: int
) -> None:
    plain = [j.key for j in iter_jobs(RunConfig(size=size))]
    tuned = RunConfig(size=size, concurrency=concurrency, rpm=rpm, tpm=tpm, max_attempts=attempts, timeout=3)
    assert [j.key for j in iter_jobs(tuned)] == plain == [j.key for j in iter_jobs(RunConfig(size=size))]


def test_key_is_the_hash_of_the_canonical_request() -> None:
    config = RunConfig(size=4)
    job = next(iter_jobs(config))
    document = {
        "v": 1,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "messages": job.messages,
        "temperature": 0.99,
        "max_tokens": 1000,
        "sample": job.sample,
    }
    assert job.key == hashlib.sha256(canonical_json(document).encode()).hexdigest()


def test_keys_ignore_limits_concurrency_and_paths() -> None:
    base = {j.key for j in iter_jobs(RunConfig(size=20))}
    other = RunConfig(size=20, concurrency=7, rpm=100, tpm=100_000, out="elsewhere", cache="x.sqlite", timeout=5)
    assert {j.key for j in iter_jobs(other)} == base


def test_keys_change_with_what_changes_the_answer() -> None:
    base = {j.key for j in iter_jobs(RunConfig(size=10))}
    for change in ({"model": "gpt-4o"}, {"temperature": 0.5}, {"max_tokens": 500}, {"provider": "offline"}):
        assert not base & {j.key for j in iter_jobs(RunConfig(size=10, **change))}, change


def test_every_sample_is_a_distinct_request() -> None:
    jobs = list(iter_jobs(RunConfig(size=100)))
    assert len({j.key for j in jobs}) == len(jobs) == 200
    assert planned_counts(RunConfig(size=100)) == {"cv": 100, "clue": 100}


def test_layout_follows_the_notebook_order_and_pairs_each_cv_with_one_clue() -> None:
    rows = layout(RunConfig(size=12))
    assert rows["sex"].to_list() == ["man"] * 6 + ["woman"] * 6
    assert rows["quality"].to_list() == (["high"] * 3 + ["low"] * 3) * 2
    # Within a quality the first CV samples are men's, the rest women's (as the notebook splits them).
    assert rows.filter(sex="woman", quality="high")["cv_sample"].to_list() == [3, 4, 5]
    assert rows["clue_sample"].to_list() == list(range(6)) * 2
    assert rows["cv_key"].n_unique() == 12
    assert rows["clue_key"].n_unique() == 12


def test_jobs_come_row_by_row_and_cell_by_cell_so_an_early_stop_leaves_whole_balanced_rows() -> None:
    config = RunConfig(size=13)  # cells of 4, 3, 3, 3
    jobs = list(iter_jobs(config))
    rows = layout(config)
    pairs = [(cv.key, clue.key) for cv, clue in zip(jobs[0::2], jobs[1::2], strict=True)]
    assert [j.stage for j in jobs[:4]] == ["cv", "clue", "cv", "clue"]
    assert sorted(pairs) == sorted(zip(rows["cv_key"], rows["clue_key"], strict=True))  # every row, once
    cell_of = {
        (cv, clue): (sex, quality)
        for cv, clue, sex, quality in zip(rows["cv_key"], rows["clue_key"], rows["sex"], rows["quality"], strict=True)
    }
    first_four = {cell_of[pair] for pair in pairs[:4]}
    assert first_four == {("man", "high"), ("man", "low"), ("woman", "high"), ("woman", "low")}
