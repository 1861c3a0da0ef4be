/** A received datagram is not a well-formed BOOTP/DHCP packet. */
export class DhcpParseError extends Error {
  override readonly name = 'DhcpParseError';
}

/** A packet or option value cannot be encoded (bad address, value too long, ...). */
export class DhcpEncodeError extends Error {
  override readonly name = 'DhcpEncodeError';
}

/** The server options are inconsistent (server address outside the subnet, bad prefix, ...). */
export class DhcpConfigError extends Error {
  override readonly name = 'DhcpConfigError';
}

/** The server socket could not be bound. */
export class DhcpBindError extends Error {
  override readonly name = 'DhcpBindError';
}

/** The lease file cannot be read or written. */
export class DhcpLeaseStoreError extends Error {
  override readonly name = 'DhcpLeaseStoreError';
}
