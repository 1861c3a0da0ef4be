// Retransmission deadlines of one worker's transfers: a binary min-heap keyed by heap_key, with
// each transfer's position kept in it so that an ended transfer leaves at once (it is freed on
// another thread soon after). An ACK only moves a transfer's deadline later, so it does not touch
// the heap: the worker finds the key stale when it comes up and puts the transfer back with its
// real deadline, once per timeout at most instead of once per ACK.

#include <stdlib.h>

#include "engine.h"

static void place(timer_heap *h, size_t i, transfer *t) {
  h->items[i] = t;
  t->heap_index = i;
}

static void sift_up(timer_heap *h, size_t i) {
  transfer *t = h->items[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (h->items[parent]->heap_key <= t->heap_key) break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

static void sift_down(timer_heap *h, size_t i) {
  transfer *t = h->items[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= h->len) break;
    if (child + 1 < h->len && h->items[child + 1]->heap_key < h->items[child]->heap_key) child++;
    if (t->heap_key <= h->items[child]->heap_key) break;
    place(h, i, h->items[child]);
    i = child;
  }
  place(h, i, t);
}

int heap_push(timer_heap *h, transfer *t) {
  if (h->len == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    transfer **items = realloc(h->items, cap * sizeof *items);
    if (!items) return -1;
    h->items = items;
    h->cap = cap;
  }
  place(h, h->len++, t);
  sift_up(h, h->len - 1);
  return 0;
}

void heap_remove(timer_heap *h, transfer *t) {
  size_t i = t->heap_index;
  if (i == HEAP_NONE) return;
  t->heap_index = HEAP_NONE;
  transfer *last = h->items[--h->len];
  if (i == h->len) return;
  place(h, i, last);
  if (i > 0 && h->items[(i - 1) / 2]->heap_key > last->heap_key) sift_up(h, i);
  else sift_down(h, i);
}

transfer *heap_top(const timer_heap *h) {
  return h->len ? h->items[0] : NULL;
}

void heap_free(timer_heap *h) {
  free(h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}
