// Liveness / readiness / API description endpoints (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { url } from '../lib/helpers.mjs';

test('GET /healthz answers 200', async () => {
  const r = await fetch(url('/healthz'), { redirect: 'manual' });
  assert.equal(r.status, 200);
});

test('GET /readyz answers 200', async () => {
  const r = await fetch(url('/readyz'), { redirect: 'manual' });
  assert.equal(r.status, 200);
});

test('GET /api/v1/openapi.json answers JSON', async () => {
  const r = await fetch(url('/api/v1/openapi.json'), { redirect: 'manual' });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /json/i, 'content-type should be JSON');
  const doc = await r.json();
  assert.equal(typeof doc, 'object');
  assert.ok(doc && (doc.openapi || doc.swagger), 'document should have an openapi (or swagger) version field');
});

test('GET / without a session redirects to /login', async () => {
  const r = await fetch(url('/'), { redirect: 'manual' });
  assert.ok([302, 303, 307].includes(r.status), `expected a redirect, got ${r.status}`);
  const loc = new URL(r.headers.get('location') || '', url('/'));
  assert.equal(loc.pathname, '/login');
});
