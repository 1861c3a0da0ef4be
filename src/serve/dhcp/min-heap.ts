// A binary min-heap of distinct items that also removes any item in O(log n) (each item's slot is
// tracked), and finds the least item passing a test without disturbing the heap.

export class IndexedMinHeap<T> {
  private readonly heap: T[] = [];
  private readonly slot = new Map<T, number>();

  /** `before(a, b)`: a comes strictly first. Must be a strict total order over the items held. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.heap.length;
  }

  /** Every item, in heap order (not sorted). The heap's own array: read it, do not keep or change it. */
  get items(): readonly T[] {
    return this.heap;
  }

  has(item: T): boolean {
    return this.slot.has(item);
  }

  /** Adds the item; one already held is left as it is. */
  add(item: T): void {
    if (this.slot.has(item)) return;
    this.heap.push(item);
    this.slot.set(item, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }

  delete(item: T): boolean {
    const at = this.slot.get(item);
    if (at === undefined) return false;
    this.slot.delete(item);
    const last = this.heap.pop() as T; // non-empty: it held `item`
    if (at < this.heap.length) {
      this.heap[at] = last;
      this.slot.set(last, at);
      this.up(at);
      this.down(this.slot.get(last) ?? at);
    }
    return true;
  }

  clear(): void {
    this.heap.length = 0;
    this.slot.clear();
  }

  /**
   * The least item for which `test` says `take`, visiting items in order: `skip` passes over one item,
   * `stop` ends the search (every later item is no better). Costs O(k log k) for k items visited, so a
   * few skipped items at the front cost little whatever the heap's size.
   */
  find(test: (item: T) => 'take' | 'skip' | 'stop'): T | undefined {
    const first = this.heap[0];
    if (first === undefined) return undefined;
    const verdict = test(first);
    if (verdict !== 'skip') return verdict === 'take' ? first : undefined;
    // Best-first walk: the next item in order is always a child of one already visited.
    const frontier = new IndexedMinHeap<number>((a, b) => this.before(this.heap[a] as T, this.heap[b] as T));
    this.pushChildren(frontier, 0);
    for (let at = frontier.pop(); at !== undefined; at = frontier.pop()) {
      const item = this.heap[at] as T;
      const v = test(item);
      if (v === 'take') return item;
      if (v === 'stop') return undefined;
      this.pushChildren(frontier, at);
    }
    return undefined;
  }

  private pop(): T | undefined {
    const first = this.heap[0];
    if (first !== undefined) this.delete(first);
    return first;
  }

  private pushChildren(frontier: IndexedMinHeap<number>, at: number): void {
    for (const child of [2 * at + 1, 2 * at + 2]) if (child < this.heap.length) frontier.add(child);
  }

  private up(at: number): void {
    const item = this.heap[at] as T;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = this.heap[parentAt] as T;
      if (!this.before(item, parent)) break;
      this.heap[at] = parent;
      this.slot.set(parent, at);
      at = parentAt;
    }
    this.heap[at] = item;
    this.slot.set(item, at);
  }

  private down(at: number): void {
    const n = this.heap.length;
    const item = this.heap[at] as T;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.before(this.heap[right] as T, this.heap[child] as T)) child = right;
      const c = this.heap[child] as T;
      if (!this.before(c, item)) break;
      this.heap[at] = c;
      this.slot.set(c, at);
      at = child;
    }
    this.heap[at] = item;
    this.slot.set(item, at);
  }
}
