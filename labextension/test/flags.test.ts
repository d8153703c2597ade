// The lab plugin's flag grammar against the table the kernel magic is tested with.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { FlagError, splitCell, USAGE } from '../src/flags';

interface ICase {
  cell: string;
  flags?: Record<string, unknown>;
  prompt?: string;
  error?: string;
}

const table = JSON.parse(
  readFileSync(join(__dirname, '..', '..', '..', 'tests', 'flag_cases.json'), 'utf-8')
) as { cases: ICase[] };

for (const c of table.cases) {
  test(`flag case: ${c.cell.split('\n')[0]}`, () => {
    if (c.error !== undefined) {
      assert.throws(
        () => splitCell(c.cell),
        (e: unknown) => e instanceof FlagError && e.message.includes(c.error!) && e.message.endsWith(USAGE)
      );
      return;
    }
    const { flags, prompt } = splitCell(c.cell);
    assert.deepEqual(flags, c.flags);
    assert.equal(prompt, c.prompt);
  });
}
