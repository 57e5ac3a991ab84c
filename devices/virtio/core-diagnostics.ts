// How the core files what it records (VIRTIO 1.2 §2.1.2 for tier-1 errors; every other code's
// default section is in diagnostics.ts): the extra fields a driver mistake may carry, the section
// a mistake is recorded under, and the diagnostic of a tier-1 error. Only mistakes and errors
// reach this file: nothing here runs for a well-behaved driver.

import type { DeviceError } from './core-errors.js';
import { deviceErrorSection } from './core-errors.js';
import { DIAGNOSTIC_SECTIONS } from './diagnostics.js';
import type { Diagnostic, DiagnosticCode, DiagnosticInput } from './diagnostics.js';

/** Extra fields a diagnostic may carry. */
export type DiagnosticExtra = Partial<Pick<Diagnostic, 'queue' | 'value' | 'offset' | 'width' | 'error' | 'section'>>;

/**
 * The section a driver mistake `code` is recorded under: the caller's (`extra.section`), else the
 * transport's where its rule differs, else the default table's, else '2'.
 */
export function mistakeSection(code: string, extra: DiagnosticExtra, transportSections: Partial<Record<DiagnosticCode, string>> | undefined): string {
  const known = code as DiagnosticCode;
  return extra.section ?? transportSections?.[known] ?? DIAGNOSTIC_SECTIONS[known] ?? '2';
}

/** The diagnostic of tier-1 `error`; `already`: the device needed a reset before it. */
export function needsResetDiagnostic(error: DeviceError, already: boolean): DiagnosticInput {
  const code = error.code;
  const section = deviceErrorSection(error);
  const queue = 'queue' in error && typeof error.queue === 'number' ? error.queue : undefined;
  return { code, section, message: `device needs reset: ${code}${already ? ' (already needing reset)' : ''}`, error, queue };
}
