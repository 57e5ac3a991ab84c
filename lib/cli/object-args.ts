// `--object TYPE,id=ID,prop=value,…` — QEMU's `-object` spelling for filter-mirror,
// filter-redirector, filter-rewriter, filter-dump, colo-compare and iothread. The properties and
// their types are lib/colo/object-table.ts's (shared with QMP object-add); a bare `prop` means
// prop=on, and `,,` is a literal comma (QEMU's escape, for paths). Every mistake is a UsageError
// naming the object, the property and what is allowed — raised while parsing, before anything opens.

import { checkObject, ObjectPropertyError, type ObjectSpec } from '../colo/object-table.js';
import { UsageError } from './args.js';

/** Splits QEMU option text at single commas; `,,` stands for one comma. */
export function splitOptions(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch !== ',') {
      cur += ch;
      continue;
    }
    if (value[i + 1] === ',') {
      cur += ',';
      i++;
      continue;
    }
    out.push(cur);
    cur = '';
  }
  out.push(cur);
  return out;
}

export function parseObject(value: string): ObjectSpec {
  const [type = '', ...rest] = splitOptions(value);
  const props: Record<string, string> = {};
  let id: string | undefined;
  for (const p of rest) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? '' : p.slice(eq + 1);
    if (key === '') throw new UsageError(`--object ${type}: empty property name in ${JSON.stringify(value)}`);
    if (key === 'id') {
      id = v;
      continue;
    }
    if (Object.hasOwn(props, key)) throw new UsageError(`--object ${type}${id === undefined ? '' : ` ${id}`}: property '${key}' given twice`);
    props[key] = v;
  }
  try {
    return checkObject(type, id, props, true);
  } catch (e) {
    if (e instanceof ObjectPropertyError) throw new UsageError(`--object ${e.message}`);
    throw e;
  }
}
