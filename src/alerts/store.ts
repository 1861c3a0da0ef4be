import { readFile, rename } from 'node:fs/promises';
import { writeJsonAtomic } from '../core/atomic-file.ts';
import { AlertStateCorruptError } from './errors.ts';
import type { Alert, AlertKey } from './types.ts';
import type { AlertKind } from '../model/site-alerts.ts';
import { errorMessage } from '../core/errors.ts';

/** One alert on its way to one sink. The request itself (with its signature or token) is built at send time. */
export interface Delivery {
  /** `<alert id>/<sink name>`. */
  id: string;
  sink: string;
  alert: Alert;
  attempts: number;
  /** Epoch ms of the next attempt. */
  nextAt: number;
  firstAt: number;
  lastError?: string;
}

export interface ActiveProblem {
  key: AlertKey;
  kind: AlertKind;
  /** Epoch ms the alert was last sent (first time, or the reminder after the window). */
  sentAt: number;
}

export interface AlertState {
  version: 1;
  /** Problems alerted and not yet cleared, by key string. */
  active: Record<string, ActiveProblem>;
  /** Plain notices (host-converged) by key string -> when sent, for deduplication. */
  notified: Record<string, number>;
  queue: Delivery[];
  /** The last deliveries given up on, kept for inspection. */
  givenUp: Delivery[];
}

export function emptyState(): AlertState {
  return { version: 1, active: {}, notified: {}, queue: [], givenUp: [] };
}

/** The alert state in the state dir: written atomically on every change so a restart loses nothing. */
export class AlertStore {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  async load(): Promise<AlertState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw err;
    }
    let data: Partial<AlertState>;
    try {
      data = JSON.parse(text) as Partial<AlertState>;
    } catch (err) {
      throw new AlertStateCorruptError(this.file, errorMessage(err));
    }
    if (data.version !== 1 || !Array.isArray(data.queue)) throw new AlertStateCorruptError(this.file, 'not a version 1 alert state');
    return { ...emptyState(), ...data } as AlertState;
  }

  /** Writes are serialised; each writes the state as it is when its turn comes. */
  save(state: AlertState): Promise<void> {
    this.writing = this.writing.catch(() => undefined).then(() => writeJsonAtomic(this.file, state, { indent: 1 }));
    return this.writing;
  }

  /** Moves an unreadable file aside, so its content can still be looked at. */
  async quarantine(now: number): Promise<string> {
    const aside = `${this.file}.corrupt-${now}`;
    await rename(this.file, aside);
    return aside;
  }
}
