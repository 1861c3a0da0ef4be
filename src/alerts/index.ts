export { Alerter, type AlerterOptions } from './alerter.ts';
export { alerterTiming, resolveSinks } from './config.ts';
export { alertForDrift, recoveryForDrift, summaryLine } from './format.ts';
export { backoffMs, DEFAULT_RETRY, type RetryPolicy } from './backoff.ts';
export { signBody, verifyBody, SIGNATURE_HEADER } from './signature.ts';
export { requestFor, slackEscape } from './sinks.ts';
export { AlertCredentialMissingError, AlertStateCorruptError } from './errors.ts';
export * from './types.ts';
