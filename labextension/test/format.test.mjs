// Unit tests of the panel's pure helpers: `npm test` (node's own test runner, no browser).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { formatAge, formatBytes, formatSeconds, imageNameFor, plainText } = require(
  '../lib/cjs/format.js'
);

test('formatBytes uses decimal units like docker', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1500), '1.5 kB');
  assert.equal(formatBytes(295_000_000), '295 MB');
  assert.equal(formatBytes(1_200_000_000), '1.2 GB');
});

test('formatSeconds', () => {
  assert.equal(formatSeconds(2.34), '2.3 s');
  assert.equal(formatSeconds(37), '37 s');
  assert.equal(formatSeconds(125), '2 min 5 s');
});

test('formatAge', () => {
  assert.equal(formatAge(new Date().toISOString()), 'just now');
  assert.equal(formatAge(new Date(Date.now() - 10 * 60_000).toISOString()), '10 min ago');
  assert.equal(formatAge(new Date(Date.now() - 3 * 3600_000).toISOString()), '3 h ago');
  assert.equal(formatAge(new Date(Date.now() - 4 * 86400_000).toISOString()), '4 days ago');
  assert.equal(formatAge('not a date'), '');
});

test('plainText strips terminal colours', () => {
  assert.equal(plainText('\x1b[91merror:\x1b[0m no solution'), 'error: no solution');
});

test('imageNameFor makes a valid docker name', () => {
  assert.equal(imageNameFor('work/My Analysis.ipynb'), 'my-analysis:latest');
  assert.equal(imageNameFor('__.ipynb'), 'notebook:latest');
});

test('lockLabel says whether a lock is used', () => {
  const { lockLabel } = require('../lib/cjs/format.js');
  assert.equal(
    lockLabel({ file: 'a.mlbox.lock', distributions: 12 }),
    'lock: a.mlbox.lock (12 pinned, with hashes)'
  );
  assert.match(lockLabel(null), /^no lock/);
});

test('jobReport splits the headline from the lines', () => {
  const { jobReport } = require('../lib/cjs/format.js');
  assert.equal(jobReport(undefined), null);
  assert.equal(jobReport([]), null);
  assert.deepEqual(
    jobReport(['before the build: 2 requirements · no lock', '  imports: numpy', '  lock: none']),
    ['2 requirements · no lock', ['imports: numpy', 'lock: none']]
  );
});
