"""EventChannel and report(): events as JSON datagrams, and invalid ones."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cotyledon_testkit import EventChannel
from cotyledon_testkit import InvalidEventError
from cotyledon_testkit import report
from cotyledon_testkit._channel import MAX_EVENT_SIZE
from cotyledon_testkit._channel_env import CHANNEL_ENV


@pytest.fixture
def channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventChannel]:
    """A channel that ``report`` in this process sends to."""
    receiver = EventChannel(str(tmp_path / "events.sock"))
    monkeypatch.setenv(CHANNEL_ENV, receiver.path)
    yield receiver
    receiver.close()


def _send_raw(channel: EventChannel, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.sendto(data, channel.path)


def test_report_rejects_oversized_event(channel: EventChannel) -> None:
    with pytest.raises(ValueError, match="more than the 65536 bytes") as caught:
        report("batch_done", ids=list(range(15000)))

    assert "'batch_done'" in str(caught.value)
    assert channel.receive() == []


def test_report_sends_largest_event(channel: EventChannel) -> None:
    # The JSON around the text takes less than 100 bytes.
    report("big", text="x" * (MAX_EVENT_SIZE - 100))

    (event,) = channel.receive()

    assert len(event["text"]) == MAX_EVENT_SIZE - 100


def test_channel_keeps_events_around_oversized(channel: EventChannel) -> None:
    report("before")
    _send_raw(channel, b'{"kind": "huge", "pid": 1, "time": 0, "fields": {"x": "' + b"y" * 90000)
    report("after")

    with pytest.raises(InvalidEventError, match="larger than 65536 bytes"):
        channel.receive()

    assert [event.kind for event in channel.events] == ["before", "after"]
    assert channel.receive() == []


def test_channel_reports_datagram_not_event(channel: EventChannel) -> None:
    _send_raw(channel, b"not json")
    _send_raw(channel, b'{"kind": "no pid"}')
    report("valid")

    with pytest.raises(InvalidEventError) as caught:
        channel.receive()

    message = str(caught.value)
    assert "2 invalid datagram(s)" in message
    assert "b'not json'" in message
    assert "KeyError" in message
    assert [event.kind for event in channel.events] == ["valid"]


def test_channel_survives_deeply_nested_json(channel: EventChannel) -> None:
    report("before")
    _send_raw(channel, b"[" * 50_000)
    report("after")

    with pytest.raises(InvalidEventError) as caught:
        channel.receive()
    report("later")
    later = channel.receive()

    assert "RecursionError" in str(caught.value)
    assert [event.kind for event in channel.events] == ["before", "after", "later"]
    assert [event.kind for event in later] == ["later"]


def test_channel_reads_between_receives(channel: EventChannel) -> None:
    # Many more events than the socket queues, and no receive() meanwhile:
    # a send that found the queue full would time out.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.settimeout(5.0)
        for index in range(200):
            payload = {"kind": "tick", "pid": 1, "time": 0.0, "fields": {"index": index}}
            sender.sendto(json.dumps(payload).encode(), channel.path)

    events = channel.receive()

    assert [event["index"] for event in events] == list(range(200))
    assert channel.receive() == []
