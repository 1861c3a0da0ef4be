// How long an image download may take and how large it may be. The agent's operator sets the defaults and the
// ceilings (agent config `images`); an image file may ask for other values (`download:` in images/<name>.yaml), but
// never above the ceilings, since whoever gets a commit merged is not trusted with the agent's disk or its time.

/** The same four limits in the units the YAML uses. */
export interface DownloadSettings {
  connectTimeoutSeconds: number;
  /** Longest wait for the next bytes (also for the response headers). */
  idleTimeoutSeconds: number;
  /** Whole download, from the connection to the last byte. */
  totalTimeoutSeconds: number;
  /** Largest file; a file that grows past it is cut off and refused. */
  maxMiB: number;
}

export const DEFAULT_DOWNLOAD: Readonly<DownloadSettings> = {
  connectTimeoutSeconds: 30,
  idleTimeoutSeconds: 60,
  totalTimeoutSeconds: 1800,
  maxMiB: 4096,
};

export const DEFAULT_CEILING: Readonly<DownloadSettings> = {
  connectTimeoutSeconds: 120,
  idleTimeoutSeconds: 600,
  totalTimeoutSeconds: 4 * 3600,
  maxMiB: 16384,
};

export const DOWNLOAD_KEYS = ['connectTimeoutSeconds', 'idleTimeoutSeconds', 'totalTimeoutSeconds', 'maxMiB'] as const;

/** What the image cache enforces for one file. */
export interface DownloadLimits {
  connectMs: number;
  idleMs: number;
  totalMs: number;
  maxBytes: number;
}

/** The operator's side: where file:// images may come from, the defaults and the ceilings. */
export interface ImagePolicy {
  /** Absolute directories; a file:// image must lie below one of them (real path). Empty: file:// is refused. */
  fileRoots: readonly string[];
  /** URL prefixes, host names, addresses and networks http(s) images may come from (src/render/image-http-allow.ts). */
  httpAllow?: readonly string[];
  download: DownloadSettings;
  ceiling: DownloadSettings;
}

export const DEFAULT_IMAGE_POLICY: Readonly<ImagePolicy> = { fileRoots: [], download: DEFAULT_DOWNLOAD, ceiling: DEFAULT_CEILING };

/** An image asks for more than the agent allows. */
export class ImageLimitError extends Error {
  override readonly name = 'ImageLimitError';
  constructor(readonly image: string, key: keyof DownloadSettings, asked: number, ceiling: number) {
    super(`image ${image}: download.${key} ${asked} is above the agent's ceiling of ${ceiling} (images.ceiling.${key} in the agent config)`);
  }
}

/** The limits for one image's files: the operator's defaults, changed by the image's own `download:` within the ceilings. */
export function downloadLimits(policy: ImagePolicy, image: string, asked: Partial<DownloadSettings> = {}): DownloadLimits {
  const s = { ...policy.download };
  for (const key of DOWNLOAD_KEYS) {
    const value = asked[key];
    if (value === undefined) continue;
    if (value > policy.ceiling[key]) throw new ImageLimitError(image, key, value, policy.ceiling[key]);
    s[key] = value;
  }
  return {
    connectMs: s.connectTimeoutSeconds * 1000,
    idleMs: s.idleTimeoutSeconds * 1000,
    totalMs: s.totalTimeoutSeconds * 1000,
    maxBytes: Math.floor(s.maxMiB * 1024 * 1024),
  };
}
