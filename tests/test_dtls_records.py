"""Record header parsing, the anti-replay window, and hypothesis fuzzing of the record parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_rtc.dtls.records import DtlsError, Record, ReplayWindow, encode_record, records_untrusted


def test_several_records_in_one_datagram() -> None:
    data = (
        encode_record(22, 0, 1, b"abc")
        + encode_record(20, 0, 2, b"\x01")
        + encode_record(23, 1, 2**40, b"")
    )
    assert records_untrusted(data) == [
        Record(22, 0xFEFD, 0, 1, b"abc"),
        Record(20, 0xFEFD, 0, 2, b"\x01"),
        Record(23, 0xFEFD, 1, 2**40, b""),
    ]


@pytest.mark.parametrize(
    "data",
    [
        encode_record(22, 0, 1, b"abc")[:-1],  # length runs past the end
        encode_record(22, 0, 1, b"abc") + b"\x16\xfe",  # trailing partial header
        b"\x30" + encode_record(22, 0, 1, b"abc")[1:],  # unknown content type
        encode_record(22, 0, 1, b"abc")[:1]
        + b"\x03\x03"
        + encode_record(22, 0, 1, b"abc")[3:],  # TLS version
    ],
)
def test_malformed_datagrams_raise_dtls_error(data: bytes) -> None:
    with pytest.raises(DtlsError):
        records_untrusted(data)


def test_replay_window() -> None:
    window = ReplayWindow()
    for seq in (5, 3, 70, 10):
        assert window.is_fresh(seq)
        window.mark(seq)
    assert not window.is_fresh(5) and not window.is_fresh(70) and not window.is_fresh(10)
    assert not window.is_fresh(3)  # 70 - 3 >= 64: too old for the window
    assert window.is_fresh(7) and window.is_fresh(71) and not window.is_fresh(6)
    window.mark(1000)
    assert not window.is_fresh(70) and window.is_fresh(999) and not window.is_fresh(1000)


@settings(deadline=None)
@given(st.lists(st.integers(0, 300), max_size=200))
def test_replay_window_matches_a_set(sequence: list[int]) -> None:
    window = ReplayWindow()
    seen: set[int] = set()
    for seq in sequence:
        highest = max(seen, default=-1)
        expected = seq not in seen and (seq > highest or highest - seq < 64)
        assert window.is_fresh(seq) == expected
        if expected:
            window.mark(seq)
            seen.add(seq)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_record_parser_fuzz(data: bytes) -> None:
    try:
        records = records_untrusted(data)
    except DtlsError:
        return
    # What parses re-encodes to the same bytes (up to the version field, which we normalise).
    assert sum(13 + len(r.fragment) for r in records) == len(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([20, 21, 22, 23]), st.integers(0, 3), st.binary(max_size=40)),
        max_size=5,
    )
)
def test_record_round_trip(items: list[tuple[int, int, bytes]]) -> None:
    data = b"".join(encode_record(t, e, i, f) for i, (t, e, f) in enumerate(items))
    assert [(r.content_type, r.epoch, r.fragment) for r in records_untrusted(data)] == items
