// Unit tests for asset keys: stable for equal inputs, different when any input,
// its label or the split between inputs changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyOf } from './hash.js';

test('keyOf is stable and sensitive to values, labels and boundaries', () => {
  const k = keyOf([{ label: 'a', value: 'x' }, { label: 'b', value: 'y' }]);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(k, keyOf([{ label: 'a', value: 'x' }, { label: 'b', value: 'y' }]));
  assert.notEqual(k, keyOf([{ label: 'a', value: 'x' }, { label: 'b', value: 'z' }]));
  assert.notEqual(k, keyOf([{ label: 'a', value: 'x' }, { label: 'c', value: 'y' }]));
  assert.notEqual(keyOf([{ label: 'a', value: 'ab' }, { label: 'a', value: 'c' }]), keyOf([{ label: 'a', value: 'a' }, { label: 'a', value: 'bc' }]));
});
