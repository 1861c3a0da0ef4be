// URLs as they may be logged or put into an error: without userinfo, and without the values of query parameters
// that carry credentials (a host's `token`, an `access_token` some forges take).

const SECRET_PARAMS = /^(token|access_token|password|secret|key|sig|signature)$/i;

/** The URL without userinfo and with credential-bearing query values blanked, safe to log and to put into errors. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactUnparsed(url);
  }
  parsed.username = '';
  parsed.password = '';
  for (const name of [...new Set(parsed.searchParams.keys())]) {
    if (SECRET_PARAMS.test(name)) parsed.searchParams.set(name, 'redacted');
  }
  return parsed.toString();
}

/** A request target (`/v1/hosts/x/config/y?token=…`) or a URL `new URL` refuses, treated as text. */
export function redactUnparsed(target: string): string {
  return target.replace(/\/\/[^/]*@/, '//').replace(/([?&](?:token|access_token|password|secret|key|sig|signature)=)[^&#]*/gi, '$1redacted');
}
