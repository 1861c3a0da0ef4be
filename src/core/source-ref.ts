// Where something was declared in the lab repository: every problem forseti reports names file:line:col.

export interface SourceRef {
  /** Path relative to the lab root, with forward slashes, e.g. `hosts/bld-003.yaml`. */
  file: string;
  line: number;
  col: number;
}

/** Locations of an entity's fields, keyed by dotted path (`boot.cmdline`, `macs.0`, `` for the document). */
export type FieldRefs = Record<string, SourceRef>;
