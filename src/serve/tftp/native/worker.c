// The engine's worker threads. Each waits on one epoll instance for its transfers' sockets and an
// eventfd (new transfers, aborts, stop), with the earliest retransmission deadline as the timeout.
// A transfer that ends is taken out of epoll and the timer heap at once, and handed to the main
// thread only at the end of the loop's turn, so an event for it later in the same batch finds it
// still allocated (and `finished`).

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

#define EVENT_BATCH 64

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void poke(worker *w) {
  uint64_t one = 1;
  ssize_t r;
  do r = write(w->wake, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

static void link_live(worker *w, transfer *t) {
  t->live_prev = NULL;
  t->live_next = w->live;
  if (w->live) w->live->live_prev = t;
  w->live = t;
}

static void unlink_live(worker *w, transfer *t) {
  if (t->live_prev) t->live_prev->live_next = t->live_next;
  else w->live = t->live_next;
  if (t->live_next) t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = NULL;
}

void worker_end(worker *w, transfer *t) {
  if (t->finished) return;
  t->finished = 1;
  heap_remove(&w->timers, t);
  /* Removed explicitly: a forked child's copy of the socket would keep the registration alive. */
  epoll_ctl(w->epfd, EPOLL_CTL_DEL, t->sock, NULL);
  close(t->sock);
  t->sock = -1;
  unlink_live(w, t);
  t->queue_next = w->finished;
  w->finished = t;
  atomic_store(&t->ended, 1);
  atomic_fetch_sub(&w->load, 1);
}

static void take_incoming(worker *w) {
  pthread_mutex_lock(&w->lock);
  transfer *list = w->incoming;
  w->incoming = NULL;
  pthread_mutex_unlock(&w->lock);
  /* Newest first in the queue: begin them in the order they were submitted. */
  transfer *ordered = NULL;
  while (list) {
    transfer *next = list->queue_next;
    list->queue_next = ordered;
    ordered = list;
    list = next;
  }
  while (ordered) {
    transfer *t = ordered;
    ordered = t->queue_next;
    t->queue_next = NULL;
    link_live(w, t);
    transfer_begin(w, t);
  }
}

static void on_wake(worker *w) {
  uint64_t count;
  while (read(w->wake, &count, sizeof count) < 0 && errno == EINTR) {
  }
  take_incoming(w);
  int stopping = atomic_load(&w->stopping);
  if (atomic_exchange(&w->aborts, 0) > 0 || stopping) {
    for (transfer *t = w->live, *next; t; t = next) {
      next = t->live_next;
      /* Acquire: abort_code and abort_message were written before the flag. */
      if (atomic_load(&t->abort_requested)) transfer_abort(w, t, t->abort_code, t->abort_message);
      else if (stopping) transfer_abort(w, t, 0, "Server shutting down");
    }
  }
}

static void run_timers(worker *w) {
  transfer *t;
  while ((t = heap_top(&w->timers)) && t->heap_key <= w->now) {
    heap_remove(&w->timers, t);
    if (t->deadline > w->now) {
      /* An ACK moved the deadline since it was queued. */
      t->heap_key = t->deadline;
      if (heap_push(&w->timers, t) < 0) transfer_abort(w, t, 0, "out of memory");
      continue;
    }
    transfer_timer(w, t);
  }
}

static void deliver_finished(worker *w) {
  while (w->finished) {
    transfer *t = w->finished;
    w->finished = t->queue_next;
    t->queue_next = NULL;
    /* Unbounded queue: never napi_queue_full. The main thread frees t once it is delivered. */
    napi_call_threadsafe_function(w->engine->tsfn, t, napi_tsfn_nonblocking);
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  struct epoll_event events[EVENT_BATCH];
  for (;;) {
    w->now = now_ms();
    int timeout = -1;
    transfer *top = heap_top(&w->timers);
    if (top) timeout = top->heap_key <= w->now ? 0 : (top->heap_key - w->now > INT_MAX ? INT_MAX : (int)(top->heap_key - w->now));
    int n = epoll_wait(w->epfd, events, EVENT_BATCH, timeout);
    if (n < 0) n = 0; /* EINTR: signals are blocked here, but a debugger can still interrupt */
    w->now = now_ms();
    for (int i = 0; i < n; i++) {
      transfer *t = events[i].data.ptr;
      if (!t) {
        on_wake(w);
        continue;
      }
      if (t->finished) continue;
      if (events[i].events & EPOLLOUT) transfer_writable(w, t);
      if (!t->finished && (events[i].events & (EPOLLIN | EPOLLERR))) transfer_readable(w, t);
    }
    run_timers(w);
    deliver_finished(w);
    if (atomic_load(&w->stopping) && !w->live) {
      pthread_mutex_lock(&w->lock);
      int empty = w->incoming == NULL;
      pthread_mutex_unlock(&w->lock);
      if (empty) break;
    }
  }
  return NULL;
}

static void close_worker(worker *w) {
  if (w->epfd >= 0) close(w->epfd);
  if (w->wake >= 0) close(w->wake);
  w->epfd = w->wake = -1;
  heap_free(&w->timers);
  free(w->scratch);
  w->scratch = NULL;
  pthread_mutex_destroy(&w->lock);
}

int engine_start_workers(engine *e, uint32_t count, char *err, size_t err_len) {
  e->workers = calloc(count, sizeof *e->workers);
  if (!e->workers) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  e->count = count;
  for (uint32_t i = 0; i < count; i++) {
    worker *w = &e->workers[i];
    w->engine = e;
    w->epfd = w->wake = -1;
    pthread_mutex_init(&w->lock, NULL);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (w->epfd < 0 || w->wake < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake, &ev) < 0) {
      snprintf(err, err_len, "worker %u: %s", i, strerror(errno));
      engine_stop_workers(e);
      return -1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* Signals stay with Node's threads: a worker never sees one (no EINTR storms, no handler runs here). */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      snprintf(err, err_len, "worker %u: %s", i, strerror(rc));
      engine_stop_workers(e);
      return -1;
    }
    w->started = 1;
  }
  return 0;
}

/* Aborts whatever still runs, waits for every worker to exit, and releases their resources. */
void engine_stop_workers(engine *e) {
  for (uint32_t i = 0; i < e->count; i++) {
    worker *w = &e->workers[i];
    if (!w->started) continue;
    atomic_store(&w->stopping, 1);
    poke(w);
  }
  for (uint32_t i = 0; i < e->count; i++) {
    worker *w = &e->workers[i];
    if (w->started) pthread_join(w->thread, NULL);
    w->started = 0;
    if (w->engine) close_worker(w);
    w->engine = NULL;
  }
  free(e->workers);
  e->workers = NULL;
  e->count = 0;
}

/* Main thread: to the worker with the fewest transfers. */
void engine_submit(engine *e, transfer *t) {
  worker *w = &e->workers[0];
  for (uint32_t i = 1; i < e->count; i++) {
    if (atomic_load(&e->workers[i].load) < atomic_load(&w->load)) w = &e->workers[i];
  }
  t->owner = w;
  t->heap_index = HEAP_NONE;
  atomic_fetch_add(&w->load, 1);
  pthread_mutex_lock(&w->lock);
  t->queue_next = w->incoming;
  w->incoming = t;
  pthread_mutex_unlock(&w->lock);
  poke(w);
}

/* Main thread, after setting abort_requested: the worker sends the ERROR and ends the transfer. */
void engine_request_abort(transfer *t) {
  atomic_fetch_add(&t->owner->aborts, 1);
  poke(t->owner);
}
