import type { RenderError } from './host.ts';

/** Some hosts of a lab could not be rendered; carries each host's error. */
export class RenderFailedError extends Error {
  override readonly name = 'RenderFailedError';
  constructor(readonly errors: RenderError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}
