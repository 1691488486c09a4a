import { TerminalError } from '../errors.js';

/** A rollback or restore that cannot be done safely; the message says why and what to do. */
export class RefusedError extends TerminalError {}
