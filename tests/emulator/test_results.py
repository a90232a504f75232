"""The results endpoint: padded large files made on the fly, and faults in mid-body."""

from __future__ import annotations

import itertools

import anthropic
import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.emulator import Emulator, EmulatorConfig, FaultRule
from cleaner.emulator.results import CHUNK_BYTES, cut_midway

BATCHES = "/v1/messages/batches"


def _ended(emulator: Emulator, requests: int, *, errored: float = 0.0) -> str:
    batch = emulator.add_batch(status="ended", request_count=requests, errored_fraction=errored)
    return str(batch["id"])


def _results(http: httpx.Client, batch_id: str) -> bytes:
    response = http.get(f"{BATCHES}/{batch_id}/results")
    assert response.status_code == 200, response.text
    return response.content


def test_padded_results_have_one_line_per_request_each_exactly_the_configured_size(
    http: httpx.Client, emulator: Emulator
) -> None:
    """With results_line_bytes every line is that long, newline included, and valid JSON."""
    emulator.configure(results_line_bytes=1000)
    body = _results(http, _ended(emulator, 300, errored=0.1))
    lines = body.split(b"\n")[:-1]
    assert len(lines) == 300
    assert len(body) == 300 * 1000
    assert {len(line) + 1 for line in lines} == {1000}
    assert {orjson.loads(line)["result"]["type"] for line in lines} == {"succeeded", "errored"}


def test_lines_longer_than_the_padding_are_left_whole(
    http: httpx.Client, emulator: Emulator
) -> None:
    """A size below a line's natural length pads nothing and cuts nothing."""
    emulator.configure(results_line_bytes=10)
    body = _results(http, _ended(emulator, 5))
    assert [orjson.loads(line)["custom_id"] for line in body.split(b"\n")[:-1]] == [
        f"req_{i}" for i in range(5)
    ]


def test_padded_results_are_the_same_bytes_on_every_download(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Deterministic (errored lines too), so a copy can be checked against a fresh download."""
    emulator.configure(results_line_bytes=700)
    batch_id = _ended(emulator, 50, errored=0.5)
    assert _results(http, batch_id) == _results(http, batch_id)


def test_the_sdk_reads_padded_results_like_plain_ones(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """The padding is JSON whitespace: the official decoder sees ordinary results."""
    emulator.configure(results_line_bytes=2048)
    batch_id = _ended(emulator, 20, errored=0.25)
    kinds = [line.result.type for line in sdk.messages.batches.results(batch_id)]
    assert (kinds.count("succeeded"), kinds.count("errored")) == (15, 5)


def test_a_large_file_is_generated_in_bounded_chunks(emulator: Emulator) -> None:
    """A large file comes out one chunk at a time, none much over 64 KiB."""
    emulator.configure(results_line_bytes=5000)
    chunks = emulator.results(_ended(emulator, 8_000))  # 40 MB, never held at once
    sizes = [len(chunk) for chunk in chunks]
    assert sum(sizes) == 40_000_000
    assert max(sizes) < CHUNK_BYTES + 5000


def test_a_negative_line_size_is_rejected() -> None:
    """The knob is a size: below zero is a configuration error."""
    with pytest.raises(ValueError, match="results_line_bytes"):
        EmulatorConfig(results_line_bytes=-1)


def test_the_operator_endpoint_sets_the_line_size(http: httpx.Client, emulator: Emulator) -> None:
    """PATCH /_emulator/config accepts results_line_bytes like every other field."""
    response = http.patch("/_emulator/config", json={"results_line_bytes": 4096})
    assert response.status_code == 200, response.text
    assert emulator.config.results_line_bytes == 4096


def test_a_cut_body_drops_the_connection_after_half_the_lines(
    http: httpx.Client, emulator: Emulator
) -> None:
    """cut_body: status 200, part of the body, then no proper end; counted with its fault."""
    batch_id = _ended(emulator, 2500)
    emulator.configure(faults=[FaultRule("cut_body", endpoints=frozenset({"results"}))])
    received = bytearray()
    with http.stream("GET", f"{BATCHES}/{batch_id}/results") as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):  # noqa: PT012  # fails mid-iteration
            for chunk in response.iter_bytes():
                received += chunk
    assert received.count(b"\n") == 1250
    assert not received.endswith(b"\n")
    assert emulator.request_counts[("results", 200)] == 1


def test_a_trickling_body_arrives_whole_when_waited_for(
    http: httpx.Client, emulator: Emulator
) -> None:
    """trickle with no pause between pieces still sends the exact file."""
    batch_id = _ended(emulator, 40)
    plain = _results(http, batch_id)
    emulator.configure(faults=[FaultRule("trickle", endpoints=frozenset({"results"}), seconds=0)])
    assert _results(http, batch_id) == plain


def test_a_trickling_body_outlasts_a_short_read_timeout(
    base_url: str, emulator: Emulator, http: httpx.Client
) -> None:
    """trickle with a long pause: the first piece comes, then nothing for a while."""
    batch_id = _ended(emulator, 40)
    emulator.configure(faults=[FaultRule("trickle", endpoints=frozenset({"results"}), seconds=30)])
    with (
        httpx.Client(base_url=base_url, headers=http.headers, timeout=0.2) as slow,
        pytest.raises(httpx.ReadTimeout),
        slow.stream("GET", f"{BATCHES}/{batch_id}/results") as response,
    ):
        for _ in response.iter_bytes():
            pass


def test_body_faults_leave_other_endpoints_alone(http: httpx.Client, emulator: Emulator) -> None:
    """A body fault on every endpoint only affects results: JSON answers stay whole."""
    batch_id = _ended(emulator, 3)
    emulator.configure(faults=[FaultRule("cut_body")])
    assert http.get(f"{BATCHES}/{batch_id}").json()["id"] == batch_id


# Results lines are never blank (the contract), so each has at least one byte before "\n".
_line = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\n", b"x") + b"\n")


@given(
    lines=st.lists(_line, min_size=1, max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=8),
)
def test_cut_midway_keeps_half_the_lines_and_part_of_the_next(
    lines: list[bytes], cuts: list[int]
) -> None:
    """For any file and any chunking: a strict prefix, half the lines, never on a boundary."""
    body = b"".join(lines)
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    chunks = [body[a:b] for a, b in itertools.pairwise(points) if b > a]
    cut = b"".join(cut_midway(iter(chunks), len(lines)))
    assert body.startswith(cut)
    assert len(cut) < len(body)
    assert cut.count(b"\n") == len(lines) // 2
    assert not cut.endswith(b"\n")
