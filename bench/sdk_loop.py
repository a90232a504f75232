"""The loop a user would write with the official SDK, for scenario 2 to race against.

Usage: `python bench/sdk_loop.py BASE_URL API_KEY RETENTION_DAYS`; prints `{"deleted": N}`.

Deliberately the obvious code: the SDK's auto-paginating iterator with the largest page,
one blocking delete per expired ended batch, the SDK's default retries and timeouts.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import anthropic


def main() -> int:
    base_url, api_key, retention_days = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = anthropic.Anthropic(api_key=api_key, base_url=base_url)
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    deleted = 0
    for batch in client.messages.batches.list(limit=1000):
        if batch.processing_status == "ended" and batch.created_at < cutoff:
            client.messages.batches.delete(batch.id)
            deleted += 1
    print(json.dumps({"deleted": deleted}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
