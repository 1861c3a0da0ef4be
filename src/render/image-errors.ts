// Why an image file was not taken into the cache. No message carries the digest, the size or any byte of what was
// read: a commit must not learn anything about a file the agent did not accept (README, "Images and a stuck agent").

/** The file could not be read or downloaded whole: a network or file error, a timeout, the size cap. */
export class ImageFetchError extends Error {
  override readonly name = 'ImageFetchError';
  constructor(readonly image: string, readonly url: string, reason: string) {
    super(`image ${image}: cannot fetch ${url}: ${reason}`);
  }
}

/** What was read is not what the lab declares; it is dropped. */
export class ImageChecksumError extends Error {
  override readonly name = 'ImageChecksumError';
  constructor(readonly image: string, readonly url: string, expected: string) {
    super(`image ${image}: ${url} does not match the declared sha256 ${expected}; it was not kept`);
  }
}

/** The URL is one the agent does not read: another scheme, or a file:// path outside the operator's file roots. */
export class ImageUrlRefusedError extends Error {
  override readonly name = 'ImageUrlRefusedError';
  constructor(readonly image: string, readonly url: string, reason: string) {
    super(`image ${image}: ${url} refused: ${reason}`);
  }
}
