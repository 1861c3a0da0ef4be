// What a dynamically linked ELF file needs at run time, read from the file itself: its program interpreter
// (PT_INTERP) and the DT_NEEDED sonames of its dynamic section. Read here rather than with the host's ldd,
// which runs the host's loader and answers for the host's libraries, not the image's.
// Layout: System V ABI, "ELF-64 Object File Format" (program header, dynamic section, d_tag values).

export interface ElfDynamicInfo {
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; absent for static executables and most shared objects. */
  interpreter?: string;
  /** DT_NEEDED, in file order. */
  needed: string[];
  /** DT_SONAME of a shared object. */
  soname?: string;
}

export class NotElfError extends Error {
  override readonly name = 'NotElfError';
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
  }
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_SONAME = 14n;

interface Segment {
  type: number;
  offset: number;
  vaddr: bigint;
  filesz: number;
}

export function isElf(data: Buffer): boolean {
  return data.length >= 4 && data.readUInt32BE(0) === 0x7f454c46;
}

function programHeaders(data: Buffer, file: string): Segment[] {
  if (!isElf(data)) throw new NotElfError(file, 'not an ELF file');
  if (data[4] !== 2) throw new NotElfError(file, 'not a 64-bit ELF file (only x86_64 images are built)');
  if (data[5] !== 1) throw new NotElfError(file, 'not a little-endian ELF file');
  const phoff = Number(data.readBigUInt64LE(0x20));
  const phentsize = data.readUInt16LE(0x36);
  const phnum = data.readUInt16LE(0x38);
  if (phoff + phentsize * phnum > data.length) throw new NotElfError(file, 'program headers past the end of the file');
  const segments: Segment[] = [];
  for (let index = 0; index < phnum; index += 1) {
    const at = phoff + index * phentsize;
    segments.push({
      type: data.readUInt32LE(at),
      offset: Number(data.readBigUInt64LE(at + 0x08)),
      vaddr: data.readBigUInt64LE(at + 0x10),
      filesz: Number(data.readBigUInt64LE(at + 0x20)),
    });
  }
  return segments;
}

/** The file offset of a virtual address, through the PT_LOAD segment that maps it. */
function fileOffset(segments: Segment[], vaddr: bigint, file: string): number {
  const load = segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + BigInt(s.filesz));
  if (!load) throw new NotElfError(file, `address 0x${vaddr.toString(16)} is in no loaded segment`);
  return load.offset + Number(vaddr - load.vaddr);
}

function cString(data: Buffer, at: number, file: string): string {
  const end = data.indexOf(0, at);
  if (at < 0 || at >= data.length || end < 0) throw new NotElfError(file, 'string past the end of the file');
  return data.toString('latin1', at, end);
}

export function readElfDynamicInfo(data: Buffer, file = '(buffer)'): ElfDynamicInfo {
  const segments = programHeaders(data, file);
  const info: ElfDynamicInfo = { needed: [] };
  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp) info.interpreter = cString(data, interp.offset, file);
  const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dynamic) return info;
  const entries: Array<{ tag: bigint; value: bigint }> = [];
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.filesz; at += 16) {
    const tag = data.readBigInt64LE(at);
    if (tag === DT_NULL) break;
    entries.push({ tag, value: data.readBigUInt64LE(at + 8) });
  }
  const strtab = entries.find((e) => e.tag === DT_STRTAB);
  if (!strtab) throw new NotElfError(file, 'dynamic section without DT_STRTAB');
  const strings = fileOffset(segments, strtab.value, file);
  for (const entry of entries) {
    if (entry.tag === DT_NEEDED) info.needed.push(cString(data, strings + Number(entry.value), file));
    else if (entry.tag === DT_SONAME) info.soname = cString(data, strings + Number(entry.value), file);
  }
  return info;
}
