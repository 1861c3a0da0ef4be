// A sorted array of strings kept sorted by binary search: the loader's file lists, in the order a directory
// listing sorts them, without sorting 10,000 names again on every commit.

/** Where `item` is, or would go, in the sorted `list`. */
export function sortedIndex(list: readonly string[], item: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as string) < item) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function insertSorted(list: string[], item: string): void {
  const at = sortedIndex(list, item);
  if (list[at] !== item) list.splice(at, 0, item);
}

export function removeSorted(list: string[], item: string): void {
  const at = sortedIndex(list, item);
  if (list[at] === item) list.splice(at, 1);
}
