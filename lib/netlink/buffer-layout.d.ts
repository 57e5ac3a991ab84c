// Types for the part of npm `buffer-layout` (1.2.x, untyped) that the netlink codec uses.
declare module 'buffer-layout' {
  export class Layout<T = unknown> {
    readonly span: number;
    readonly property?: string;
    decode(b: Buffer, offset?: number): T;
    encode(src: T, b: Buffer, offset?: number): number;
  }
  export function u8(property?: string): Layout<number>;
  export function u16(property?: string): Layout<number>;
  export function u32(property?: string): Layout<number>;
  export function s32(property?: string): Layout<number>;
  export function struct<T>(fields: Layout<any>[], property?: string): Layout<T>;
  const BufferLayout: {
    u8: typeof u8;
    u16: typeof u16;
    u32: typeof u32;
    s32: typeof s32;
    struct: typeof struct;
  };
  export default BufferLayout;
}
