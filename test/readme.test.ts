// The README's TypeScript examples run as written: each ```ts block is saved as a module (with
// `'virtio-net-model'` pointing at the package root, `'virtio-net-model/browser'` at browser.ts) and imported; console.assert failures fail it.
import { expect } from 'chai';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const blocks = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('README examples', () => {
  const dir = join(root, 'test', '.readme-examples');
  before(() => mkdirSync(dir, { recursive: true }));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('readme_has_api_examples', () => {
    expect(blocks.length).to.be.greaterThan(3);
  });

  blocks.forEach((code, i) => {
    it(`readme_example_${i + 1}_runs`, async () => {
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, code.replaceAll("from 'virtio-net-model/browser'", "from '../../browser.js'").replaceAll("from 'virtio-net-model'", "from '../../index.js'"));
      const failures: unknown[][] = [];
      const realAssert = console.assert;
      const realLog = console.log;
      console.assert = (cond?: boolean, ...rest: unknown[]) => {
        if (!cond) failures.push(rest);
      };
      console.log = () => undefined;
      try {
        await import(pathToFileURL(file).href);
      } finally {
        console.assert = realAssert;
        console.log = realLog;
      }
      expect(failures, `console.assert failed in README example ${i + 1}`).to.deep.equal([]);
    });
  });
});
