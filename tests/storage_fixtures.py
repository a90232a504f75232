"""Storage fixtures: every storage behaviour runs on a local directory and on moto's S3.

Import the fixtures you use into a test module (``from tests.storage_fixtures import ...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3server import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the session; tests get their own buckets."""
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``s3://`` url of a fresh bucket, with the AWS_* environment pointing at moto."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.create_bucket()}/audit"


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    """A ``file://`` url of a fresh directory."""
    return (tmp_path / "store").as_uri()


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The url of an empty store: once a local directory, once a moto bucket."""
    name = "file_url" if request.param == "file" else "s3_url"
    url: str = request.getfixturevalue(name)
    return url
