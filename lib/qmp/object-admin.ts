// object-add / object-del (QEMU qom/object_interfaces.c user_creatable_add_qapi / qmp_object_del)
// over an ObjectRegistry (lib/colo/object-registry.ts): QMP's flat arguments are checked against
// the same property table as `--object` (lib/colo/object-table.ts), the registry's refusals become
// GenericErrors in QEMU's words.

import { checkObject, ObjectPropertyError } from '../colo/object-table.js';
import type { ObjectRegistry } from '../colo/object-registry.js';
import { genericError } from './errors.js';

/** What the object-add / object-del handlers reach through the context. */
export interface QmpObjectAdmin {
  add(args: Readonly<Record<string, unknown>>): Promise<void>;
  del(id: string): Promise<void>;
  /** Whether an object of that id exists (passthrough entries' object-name may name it). */
  has(id: string): boolean;
}

export function objectAdminFor(registry: ObjectRegistry): QmpObjectAdmin {
  return {
    async add(args) {
      const { 'qom-type': type, id, ...props } = args;
      try {
        registry.add(checkObject(String(type), id, props, false));
      } catch (e) {
        if (e instanceof ObjectPropertyError) throw genericError(e.qmpMessage);
        throw e;
      }
    },
    async del(id) {
      try {
        await registry.delete(id);
      } catch (e) {
        if (e instanceof ObjectPropertyError) throw genericError(e.qmpMessage);
        throw e;
      }
    },
    has: (id) => registry.has(id),
  };
}
