/** The answer's bytes: the Latin-1 shortcut for ASCII text must give exactly the UTF-8 bytes of any string. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8Bytes } from '../src/serve/answer-cache.ts';

test('utf8Bytes gives the UTF-8 bytes of ASCII, accented, CJK, astral and lone-surrogate text', () => {
  const long = 'x'.repeat(100_000);
  const texts = [
    '',
    'plain ascii {"k":10}',
    'Robe à fleurs',
    '日本のドレス',
    'dress 😀',
    '\ud800',
    'a\udc00b',
    `${long}ü`,
    long,
  ];
  for (const text of texts) {
    assert.deepEqual(
      utf8Bytes(text),
      Buffer.from(text, 'utf8'),
      `bytes of ${JSON.stringify(text.slice(0, 12))}`,
    );
  }
});
