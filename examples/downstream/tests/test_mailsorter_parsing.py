"""recipient_domain and owner_of: the pure parts of the sorter."""

from __future__ import annotations

import pytest
from mailsorter.services import UNSORTED
from mailsorter.services import owner_of
from mailsorter.services import recipient_domain


@pytest.mark.parametrize(
    ("message", "domain"),
    [
        ("To: bob@example.com\n\nhello", "example.com"),
        ("Subject: hi\nTO: Alice <alice@Example.ORG>\n\n", "example.org"),
        ("To: a@one.test, b@two.test\n\n", "one.test"),
        ("To: nobody\n\n", UNSORTED),
        ("\nTo: late@example.com\n", UNSORTED),
        ("", UNSORTED),
    ],
)
def test_recipient_domain_reads_to_header(message: str, domain: str) -> None:
    assert recipient_domain(message) == domain


def test_owner_of_spreads_names() -> None:
    owners = {owner_of(f"message-{number}.eml", 2) for number in range(20)}

    assert owners == {0, 1}
