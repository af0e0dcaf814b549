"""The ordering guard's rules, pure: sequencers, unordered writes, and what a tombstone keeps out."""

from __future__ import annotations

from typing import Any

import pytest

from app.document import DELETED_FIELD, SEQUENCER_FIELD, Remove, Upsert, is_newer, may_write


def _upsert(sequencer: str | None, last_modified: str | None = "2026-11-30T10:00:00+00:00") -> Upsert:
    source: dict[str, Any] = {"bucket": "b", "key": "k"}
    if last_modified:
        source["last_modified"] = last_modified
    return Upsert("id", source, sequencer)


def _tombstone(event_time: str | None, sequencer: str | None = None) -> dict[str, Any]:
    return {DELETED_FIELD: True, SEQUENCER_FIELD: sequencer, "event_time": event_time}


@pytest.mark.parametrize(
    ("incoming", "stored", "newer"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E4", True),
        ("0055AED6DCD90281E4", "0055AED6DCD90281E5", False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),  # a redelivery writes nothing
        ("0055AED6DCD9028", "0055AED6DCD90281", False),  # right-padded: ...0280 < ...0281
        ("0055aed6dcd90282", "0055AED6DCD90281FF", True),  # case does not matter; right-padded
    ],
)
def test_sequencers_compare_right_padded_as_s3_documents(incoming: str, stored: str, newer: bool) -> None:
    assert is_newer(incoming, {SEQUENCER_FIELD: stored}) is newer


def test_an_unordered_create_read_before_a_removal_never_brings_the_file_back() -> None:
    removed_later = _tombstone("2026-11-30T10:00:05.000Z")
    assert may_write(_upsert(None, "2026-11-30T10:00:00+00:00"), removed_later) is False
    assert may_write(_upsert(None, "2026-11-30T10:00:05+00:00"), removed_later) is False


def test_an_unordered_create_of_an_object_made_again_after_its_removal_is_written() -> None:
    assert (
        may_write(_upsert(None, "2026-11-30T10:01:00+00:00"), _tombstone("2026-11-30T10:00:05.000Z")) is True
    )


def test_unordered_writes_over_live_documents_or_unknown_times_stay_last_writer_wins() -> None:
    assert may_write(_upsert(None), {DELETED_FIELD: False, SEQUENCER_FIELD: "01"}) is True
    assert may_write(_upsert(None), _tombstone(None)) is True
    assert may_write(_upsert(None, None), _tombstone("2026-11-30T10:00:05.000Z")) is True


def test_a_sequenced_create_is_judged_by_its_sequencer_alone() -> None:
    tombstone = _tombstone("2026-11-30T10:00:05.000Z", sequencer="0A")
    assert may_write(_upsert("0B", "2026-11-30T09:00:00+00:00"), tombstone) is True
    assert may_write(_upsert("09", "2026-11-30T11:00:00+00:00"), tombstone) is False


def test_a_removal_without_a_sequencer_always_writes_its_tombstone() -> None:
    assert may_write(Remove("id", "b", "k", None), {DELETED_FIELD: False, SEQUENCER_FIELD: "0A"}) is True
