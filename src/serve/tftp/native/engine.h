// The TFTP transfer engine: a fixed set of worker threads, each running many read transfers at
// once on one epoll instance, with a timer heap for retransmissions. Node decides everything
// before the data phase (parsing, root confinement, options, the OACK) and after it (logging);
// the engine runs the data phase and reports each transfer's outcome once.
//
// Files: timer-heap.c (deadlines), transfer.c (the protocol of one transfer), worker.c (threads,
// epoll, hand-over from the main thread), binding.c (N-API). JS side: native-engine.ts.
//
// Ownership: the main thread creates a transfer (its socket bound, its parameters copied) and hands
// it to a worker through a locked queue; from then on only that worker touches its protocol state,
// closes its socket when it ends, and passes it back to the main thread through the engine's
// thread-safe function. The main thread frees it after delivering the outcome. The file descriptor
// stays JS's throughout (it is only read with pread). A wide window is read straight from the file
// for each sending, into the worker's scratch buffer, and read again when it must be sent again; a
// narrow one (lock-step, where a read per block would be a third of the system calls) is served from
// a small read-ahead buffer of the transfer's own, made only once the client has acknowledged
// something. So a transfer costs this struct, plus AHEAD_BYTES while a client is really downloading.

#ifndef FORSETI_TFTP_ENGINE_H
#define FORSETI_TFTP_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NAPI_VERSION 8
#include <node_api.h>

enum { OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5 };
enum outcome { DONE_OK = 0, DONE_TIMEOUT = 1, DONE_CLIENT_ABORT = 2, DONE_SOURCE = 3, DONE_ABORTED = 4, DONE_SOCKET = 5 };

#define MESSAGE_MAX 256
#define WINDOW_MAX 64
#define BLKSIZE_MAX 65464
/* Read-ahead of a transfer whose window takes at most half of it. */
#define AHEAD_BYTES (32 * 1024)

typedef struct worker worker;
typedef struct handle handle;

typedef struct transfer {
  /* Set by the main thread before the hand-over; read-only afterwards. */
  int sock;
  int file_fd;
  uint64_t size;
  uint64_t last_block; /* absolute number of the last (short, possibly empty) block: size / blksize + 1 */
  struct sockaddr_storage peer;
  socklen_t peer_len;
  uint32_t blksize, windowsize, timeout_ms, retries;
  uint8_t *oack;
  size_t oack_len;
  char timeout_message[MESSAGE_MAX];
  worker *owner;

  /* The worker's own. */
  int in_oack;
  int finished;        /* ended on the worker; its outcome is on its way to the main thread */
  int want_writable;   /* EPOLLOUT is armed: the socket's send buffer was full */
  uint64_t win_start;  /* oldest unacknowledged block */
  uint32_t win_len;    /* blocks in the window in flight */
  uint64_t next_send;  /* the next block of the window still to hand to the kernel */
  uint32_t tries;
  uint64_t deadline;   /* ms, CLOCK_MONOTONIC: when the unanswered OACK or window is due again */
  uint8_t *ahead;      /* read-ahead: file bytes [ahead_off, ahead_off + ahead_len) */
  uint64_t ahead_off;
  size_t ahead_len;
  uint64_t heap_key;   /* the deadline it sits in the heap with (<= deadline: refreshed lazily) */
  size_t heap_index;   /* position in the worker's heap, or HEAP_NONE */
  struct transfer *live_prev, *live_next;
  struct transfer *queue_next; /* hand-over queue, then the list of finished transfers */

  /* Shared between the main thread and the worker. */
  atomic_int progressed;      /* the client acknowledged something: it talks to this TID */
  atomic_int ended;
  atomic_int abort_requested; /* set (release) after abort_code and abort_message are written */
  uint16_t abort_code;
  char abort_message[MESSAGE_MAX];

  /* The outcome, read by the main thread once the transfer reached it. */
  enum outcome result;
  uint64_t bytes;
  uint32_t retransmits;
  uint16_t client_code;
  uint8_t message[MESSAGE_MAX];
  size_t message_len;

  /* Main thread only. */
  napi_ref callback;
  handle *js;
} transfer;

#define HEAP_NONE ((size_t)-1)

/* timer-heap.c: a binary min-heap of transfers by heap_key. */
typedef struct timer_heap {
  transfer **items;
  size_t len, cap;
} timer_heap;

int heap_push(timer_heap *h, transfer *t); /* -1 when out of memory */
void heap_remove(timer_heap *h, transfer *t);
transfer *heap_top(const timer_heap *h);
void heap_free(timer_heap *h);

/* What the worker threads share with the main thread. */
typedef struct engine {
  worker *workers;
  uint32_t count;
  napi_threadsafe_function tsfn; /* delivers finished transfers to the main thread */
  uint32_t active;               /* main thread: transfers started and not yet delivered */
  int closed;                    /* main thread */
} engine;

struct worker {
  engine *engine;
  pthread_t thread;
  int started;
  int epfd;
  int wake; /* eventfd: new transfers, aborts, stop */
  pthread_mutex_t lock;
  transfer *incoming; /* under lock, newest first */
  atomic_int aborts;  /* abort requests not yet looked at */
  atomic_int stopping;
  atomic_uint load;   /* transfers handed to this worker and not yet ended */

  /* The worker's own. */
  transfer *live;
  transfer *finished; /* ended during this turn of the loop; delivered at its end */
  timer_heap timers;
  uint64_t now;
  uint8_t *scratch; /* the payload of one window read straight from the file */
  size_t scratch_cap;
  uint8_t headers[WINDOW_MAX][4]; /* the DATA headers of the packets being sent */
};

/* worker.c */
int engine_start_workers(engine *e, uint32_t count, char *err, size_t err_len);
void engine_stop_workers(engine *e);
void engine_submit(engine *e, transfer *t);
void engine_request_abort(transfer *t);
void worker_end(worker *w, transfer *t); /* ends the transfer; it reaches the main thread after this turn of the loop */

/* transfer.c, on the worker */
void transfer_begin(worker *w, transfer *t);
void transfer_readable(worker *w, transfer *t);
void transfer_writable(worker *w, transfer *t);
void transfer_timer(worker *w, transfer *t);
void transfer_abort(worker *w, transfer *t, uint16_t code, const char *message);
void transfer_free(transfer *t);

#endif
