import type { Redactor } from '../redact/redactor.ts';
import { attemptToken } from '../render/token.ts';

/**
 * The tokens of the hosts' current provisioning attempts (src/render/token.ts), told to the redactor: a token is a
 * secret from the moment its attempt starts until the host leaves the served commit.
 */
export class AttemptTokens {
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly key: Buffer,
    private readonly redactor: Redactor,
    /** The nonce of the host's current attempt, if it has one. */
    private readonly nonceOf: (host: string) => string | undefined,
  ) {}

  /** `only`: these hosts are all there are (a commit switches); otherwise they are added to those known. */
  know(hosts: Iterable<string>, only: boolean): void {
    if (only) this.tokens.clear();
    for (const host of hosts) {
      const nonce = this.nonceOf(host);
      if (nonce) this.tokens.set(host, attemptToken(this.key, host, nonce));
    }
    this.redactor.setTokens('attempt-tokens', this.tokens.values());
  }
}
