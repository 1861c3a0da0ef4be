/** One declaration of a key (a name, a MAC, an IP) in a file. */
export interface Use {
  file: string;
  /** Position inside the file's declarations (the MAC's index), for the first-declared-wins order. */
  i: number;
}

/** Key → its declarations in file order; the first one owns the key, any later one is a duplicate. */
export class UseIndex<T extends Use> {
  private readonly byKey = new Map<string, T[]>();
  readonly duplicated = new Set<string>();

  add(key: string, use: T): void {
    const list = this.byKey.get(key);
    if (!list) {
      this.byKey.set(key, [use]);
      return;
    }
    let at = list.length;
    while (at > 0 && declaredBefore(use, list[at - 1] as T)) at--;
    list.splice(at, 0, use);
    this.duplicated.add(key);
  }

  remove(key: string, file: string): void {
    const list = this.byKey.get(key)?.filter((u) => u.file !== file);
    if (!list || list.length === 0) this.byKey.delete(key);
    else this.byKey.set(key, list);
    if (!list || list.length < 2) this.duplicated.delete(key);
  }

  get(key: string): readonly T[] {
    return this.byKey.get(key) ?? [];
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  clear(): void {
    this.byKey.clear();
    this.duplicated.clear();
  }
}

function declaredBefore(a: Use, b: Use): boolean {
  return a.file < b.file || (a.file === b.file && a.i < b.i);
}
