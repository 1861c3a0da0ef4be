/** A Publish message that is not a well-formed events.EventRequest. */
export class TalosEventDecodeError extends Error {
  override readonly name = 'TalosEventDecodeError';
}

/** The sink could not listen on its address. */
export class TalosEventSinkBindError extends Error {
  override readonly name = 'TalosEventSinkBindError';
}

/** The sink's options are inconsistent (a limit that is not a positive number, an empty host). */
export class TalosEventSinkConfigError extends Error {
  override readonly name = 'TalosEventSinkConfigError';
}
