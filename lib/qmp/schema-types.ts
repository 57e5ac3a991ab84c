// The small type language of the QMP schema table (a subset of QEMU's QAPI schema language,
// docs/devel/qapi-code-gen: builtin types, enums, structs, lists, `*` for optional members), and
// the TypeScript types derived from it so that handlers are checked against the table.

import type { QmpErrorClass } from './errors.js';

/** Builtin types. The unsigned ones are range-checked the way QEMU checks them. */
export type QmpBuiltin = 'str' | 'bool' | 'int' | 'uint8' | 'uint16' | 'uint32' | 'number' | 'any';

/** A builtin, the name of a type in the table's `types`, or a one-element tuple for a list. */
export type QmpTypeRef = string | readonly [QmpTypeRef];

/** Struct members in wire order; a leading `*` marks an optional member (QAPI notation). */
export interface QmpMembers {
  readonly [member: string]: QmpTypeRef;
}

export type QmpTypeDef = { readonly enum: readonly string[] } | { readonly struct: QmpMembers };

/** One example exchange: what the client sends and what the server answers. */
export interface QmpExchange {
  readonly '->': Readonly<Record<string, unknown>>;
  readonly '<-': Readonly<Record<string, unknown>>;
  /** Run before capabilities negotiation (default: after). */
  readonly mode?: 'negotiation';
  /** The reply's `return` list starts with the listed entries (default: the reply is exact). */
  readonly partial?: boolean;
}

export interface QmpCommandDef {
  readonly doc: string;
  /** Arguments; absent means none are accepted. */
  readonly data?: QmpMembers;
  /** Return type; absent means the command returns `{}`. */
  readonly returns?: QmpTypeRef;
  /** Available in capabilities negotiation mode (only `qmp_capabilities` is, as in QEMU). */
  readonly negotiation?: boolean;
  /** Errors the command gives besides argument validation; `desc` may hold `%s` for a name. */
  readonly errors?: readonly { readonly class: QmpErrorClass; readonly desc: string; readonly when: string }[];
  /** Example exchanges, run as tests against the fixture described at the top of schema.ts. */
  readonly examples: readonly QmpExchange[];
}

export interface QmpEventDef {
  readonly doc: string;
  readonly data: QmpMembers;
  /** One example event as the server sends it (any timestamp). */
  readonly example: Readonly<Record<string, unknown>>;
}

export interface QmpSchemaDef {
  readonly types: { readonly [name: string]: QmpTypeDef };
  readonly commands: { readonly [name: string]: QmpCommandDef };
  readonly events: { readonly [name: string]: QmpEventDef };
}

// --- TypeScript types derived from the table -----------------------------------------------------

/** The value type of a type reference, given the table's named types `Ty`. */
export type QmpValueOf<T, Ty> = T extends 'str'
  ? string
  : T extends 'bool'
    ? boolean
    : T extends 'int' | 'uint8' | 'uint16' | 'uint32' | 'number'
      ? number
      : T extends 'any'
        ? unknown
        : T extends readonly [infer E]
          ? readonly QmpValueOf<E, Ty>[]
          : T extends keyof Ty
            ? QmpDefValue<Ty[T], Ty>
            : never;

type QmpDefValue<D, Ty> = D extends { readonly enum: readonly (infer V)[] }
  ? V
  : D extends { readonly struct: infer M }
    ? QmpMembersValue<M, Ty>
    : never;

type Required<M, Ty> = {
  -readonly [K in keyof M as K extends `*${string}` ? never : K]: QmpValueOf<M[K], Ty>;
};
type Optional<M, Ty> = {
  -readonly [K in keyof M as K extends `*${infer N}` ? N : never]?: QmpValueOf<M[K], Ty>;
};
type Flatten<T> = { [K in keyof T]: T[K] };

/** The object type of a members table. */
export type QmpMembersValue<M, Ty> = Flatten<Required<M, Ty> & Optional<M, Ty>>;
