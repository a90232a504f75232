// The official TypeScript SDK against a running emulator: a second proof of the contract.
//
// Run by tests/emulator/test_ts_sdk.py, which starts the emulator, seeds it and asserts on the
// one JSON object this script prints. Input (environment): ANTHROPIC_BASE_URL and
// ANTHROPIC_API_KEY (read by the SDK itself), CONTRACT_IDS (JSON: which seeded batch to use
// for each call) and CONTRACT_LIMIT (page size for auto-pagination). The key is never printed.
'use strict';

const Anthropic = require('@anthropic-ai/sdk');

const SDK = Anthropic.default || Anthropic;
const baseURL = process.env.ANTHROPIC_BASE_URL;
const ids = JSON.parse(process.env.CONTRACT_IDS || '{}');
const limit = Number(process.env.CONTRACT_LIMIT || '7');

function client(options = {}) {
  return new SDK({ baseURL, maxRetries: 0, ...options });
}

async function operator(method, path, body) {
  const response = await fetch(`${baseURL}/_emulator${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`operator ${method} ${path}: ${response.status}`);
  return response.json();
}

async function withFault(kind, call) {
  await operator('PATCH', '/config', { faults: [{ kind }] });
  try {
    return await call();
  } finally {
    await operator('PATCH', '/config', { faults: [] });
  }
}

// The SDK error a call raised: its class name, status, error type and whether it is an
// instance of the class the SDK documents for that status.
async function caught(expected, call) {
  try {
    await call();
    return { raised: false };
  } catch (err) {
    return {
      raised: true,
      class: err.constructor.name,
      instanceof: err instanceof SDK[expected],
      api_error: err instanceof SDK.APIError,
      status: err.status ?? null,
      type: err.error?.error?.type ?? null,
      has_retry_after: Boolean(err.headers?.get?.('retry-after')),
    };
  }
}

async function main() {
  const sdk = client();
  const out = {};

  const listed = [];
  for await (const batch of sdk.messages.batches.list({ limit })) {
    listed.push({ id: batch.id, created_at: batch.created_at });
  }
  out.listed = listed;

  const { data: retrieved, response } = await sdk.messages.batches
    .retrieve(ids.retrieve)
    .withResponse();
  out.retrieved = {
    id: retrieved.id,
    type: retrieved.type,
    processing_status: retrieved.processing_status,
    request_counts: retrieved.request_counts,
    workspace_header: response.headers.get('anthropic-workspace-id'),
    request_id: retrieved._request_id ?? response.headers.get('request-id'),
  };

  const canceled = await sdk.messages.batches.cancel(ids.cancel);
  out.canceled = { id: canceled.id, processing_status: canceled.processing_status };

  out.deleted = await sdk.messages.batches.delete(ids.delete);

  const lines = [];
  for await (const line of await sdk.messages.batches.results(ids.results)) {
    lines.push({ custom_id: line.custom_id, type: line.result.type });
  }
  out.results = lines;

  const missing = 'msgbatch_' + '0'.repeat(24);
  out.errors = {
    400: await caught('BadRequestError', () => sdk.messages.batches.delete(ids.running)),
    401: await caught('AuthenticationError', () =>
      client({ apiKey: 'not-the-key' }).messages.batches.list(),
    ),
    403: await caught('PermissionDeniedError', () =>
      client({ defaultHeaders: { 'anthropic-workspace-id': 'wrkspc_someone_else' } })
        .messages.batches.list(),
    ),
    404: await caught('NotFoundError', () => sdk.messages.batches.retrieve(missing)),
    429: await withFault('rate_limit', () =>
      caught('RateLimitError', () => sdk.messages.batches.list()),
    ),
    500: await withFault('server_error', () =>
      caught('InternalServerError', () => sdk.messages.batches.retrieve(ids.retrieve)),
    ),
    529: await withFault('overloaded', () =>
      caught('OverloadedError', () => sdk.messages.batches.retrieve(ids.retrieve)),
    ),
  };

  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`contract.js failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
