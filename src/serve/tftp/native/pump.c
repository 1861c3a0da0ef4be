// The TFTP data pump: runs the data phase of one read transfer (optional OACK handshake, then
// windows of DATA until the last block is acknowledged) on a thread of its own, with blocking
// system calls, and reports the outcome once. It exists for lock-step (RFC 1350) transfers on fast
// links, where the cost per datagram is the whole cost: Node pays an event-loop wake-up, a JS
// callback and a buffer per ACK, about 20 % more than tftpd-hpa's blocking loop. The protocol
// rules are those of read-transfer.ts, which stays the reference (and serves what this does not:
// generated content, netascii, or a machine where this did not build).
//
// JS side: native-pump.ts. Ownership: the thread owns the socket and closes it; the file
// descriptor stays JS's (it is only read with pread); the result reaches JS through a
// thread-safe function, after which the handle is inert.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NAPI_VERSION 8
#include <node_api.h>

enum { OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5 };
enum outcome { DONE_OK = 0, DONE_TIMEOUT = 1, DONE_CLIENT_ABORT = 2, DONE_SOURCE = 3, DONE_ABORTED = 4, DONE_SOCKET = 5 };

#define MESSAGE_MAX 256
#define READ_AHEAD (256 * 1024)

typedef struct transfer {
  int sock;
  int wake[2]; /* written by abort(); the thread polls the read end next to the socket */
  int file_fd;
  uint64_t size;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  uint32_t blksize, windowsize, timeout_ms, retries;
  uint8_t *oack;
  size_t oack_len;
  char timeout_message[MESSAGE_MAX];

  atomic_int progressed; /* the client acknowledged something: it talks to this TID */
  atomic_int ended;      /* the transfer is over; its outcome may not have reached JS yet */
  atomic_int abort_requested;
  uint16_t abort_code;
  char abort_message[MESSAGE_MAX];

  /* Window: the blocks in flight, slot = absolute block number % windowsize. */
  uint8_t *slots;
  uint32_t *slot_len;
  uint64_t win_start; /* absolute number of the oldest unacknowledged block */
  uint32_t win_len;
  int last_read;
  uint64_t offset; /* next file offset to read */
  uint8_t *ahead;  /* read-ahead buffer: [ahead_pos, ahead_end) not yet cut into blocks */
  size_t ahead_pos, ahead_end;

  /* Outcome, read by JS after the thread is done with it. */
  enum outcome result;
  uint64_t bytes;
  uint32_t retransmits;
  uint16_t client_code;
  uint8_t message[MESSAGE_MAX];
  size_t message_len;

  napi_threadsafe_function tsfn;
  napi_ref callback;
} transfer;

/* What JS holds: survives the transfer, so a late abort() or progressed() finds it inert. */
typedef struct handle {
  transfer *t;
  int finished; /* main thread only */
  int progressed; /* copied from the transfer when it finishes */
  int orphaned;   /* JS dropped the handle while the transfer ran: deliver() frees it */
} handle;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_message(transfer *t, const char *text) {
  size_t n = strlen(text);
  if (n > MESSAGE_MAX) n = MESSAGE_MAX;
  memcpy(t->message, text, n);
  t->message_len = n;
}

static void send_packet(transfer *t, const uint8_t *buf, size_t len) {
  /* A failed send surfaces as a missing ACK, and so as a retransmission. */
  ssize_t r;
  do r = sendto(t->sock, buf, len, 0, (const struct sockaddr *)&t->peer, t->peer_len);
  while (r < 0 && errno == EINTR);
}

static void send_error(transfer *t, const struct sockaddr *to, socklen_t to_len, uint16_t code, const char *text) {
  uint8_t buf[4 + MESSAGE_MAX + 1];
  size_t n = strlen(text);
  if (n > MESSAGE_MAX) n = MESSAGE_MAX;
  buf[0] = 0;
  buf[1] = OP_ERROR;
  buf[2] = (uint8_t)(code >> 8);
  buf[3] = (uint8_t)code;
  for (size_t i = 0; i < n; i++) buf[4 + i] = text[i] == '\0' ? ' ' : (uint8_t)text[i];
  buf[4 + n] = 0;
  ssize_t r;
  do r = sendto(t->sock, buf, 5 + n, 0, to, to_len);
  while (r < 0 && errno == EINTR);
}

static int same_peer(const transfer *t, const struct sockaddr_storage *from) {
  if (from->ss_family != t->peer.ss_family) return 0;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from, *b = (const struct sockaddr_in *)&t->peer;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from, *b = (const struct sockaddr_in6 *)&t->peer;
  return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
}

/* Fills one block's payload from the read-ahead buffer; returns its length or -1 (message set). */
static ssize_t read_block(transfer *t, uint8_t *out) {
  size_t want = t->blksize;
  if (t->size - t->offset < want) want = (size_t)(t->size - t->offset);
  size_t got = 0;
  while (got < want) {
    if (t->ahead_pos == t->ahead_end) {
      uint64_t left = t->size - t->offset - got;
      size_t chunk = left < READ_AHEAD ? (size_t)left : READ_AHEAD;
      ssize_t r;
      do r = pread(t->file_fd, t->ahead, chunk, (off_t)(t->offset + got));
      while (r < 0 && errno == EINTR);
      if (r < 0) {
        char text[MESSAGE_MAX];
        snprintf(text, sizeof text, "reading file failed: %s", strerror(errno));
        set_message(t, text);
        return -1;
      }
      if (r == 0) {
        set_message(t, "reading file failed: the file is shorter than when the transfer started");
        return -1;
      }
      t->ahead_pos = 0;
      t->ahead_end = (size_t)r;
    }
    size_t n = t->ahead_end - t->ahead_pos;
    if (n > want - got) n = want - got;
    memcpy(out + got, t->ahead + t->ahead_pos, n);
    t->ahead_pos += n;
    got += n;
  }
  t->offset += got;
  return (ssize_t)got;
}

static uint8_t *slot_of(transfer *t, uint64_t block) {
  return t->slots + (size_t)(block % t->windowsize) * (4 + t->blksize);
}

/* Sends blocks until the window is full or the last one is out; 0, or -1 when the file failed. */
static int fill(transfer *t) {
  while (!t->last_read && t->win_len < t->windowsize) {
    uint64_t block = t->win_start + t->win_len;
    uint8_t *p = slot_of(t, block);
    ssize_t n = read_block(t, p + 4);
    if (n < 0) return -1;
    p[0] = 0;
    p[1] = OP_DATA;
    p[2] = (uint8_t)((block >> 8) & 0xff);
    p[3] = (uint8_t)(block & 0xff);
    t->slot_len[block % t->windowsize] = (uint32_t)(4 + n);
    if ((size_t)n < t->blksize) t->last_read = 1;
    t->win_len++;
    send_packet(t, p, 4 + (size_t)n);
  }
  return 0;
}

static void resend_window(transfer *t) {
  for (uint32_t i = 0; i < t->win_len; i++) {
    uint64_t block = t->win_start + i;
    send_packet(t, slot_of(t, block), t->slot_len[block % t->windowsize]);
  }
}

/* The transfer itself. Returns with t->result set; the caller reports it. */
static void pump(transfer *t) {
  int in_oack = t->oack != NULL;
  uint32_t tries = 0;
  uint8_t buf[4 + MESSAGE_MAX + 512];

  if (in_oack) send_packet(t, t->oack, t->oack_len);
  else if (fill(t) < 0) goto source_failed;
  uint64_t deadline = now_ms() + t->timeout_ms;

  for (;;) {
    if (!in_oack && t->last_read && t->win_len == 0) {
      t->result = DONE_OK;
      return;
    }
    uint64_t now = now_ms();
    if (now >= deadline) {
      if (++tries > t->retries) {
        t->result = DONE_TIMEOUT;
        set_message(t, t->timeout_message);
        send_error(t, (const struct sockaddr *)&t->peer, t->peer_len, 0, t->timeout_message);
        return;
      }
      t->retransmits++;
      if (in_oack) send_packet(t, t->oack, t->oack_len);
      else resend_window(t);
      deadline = now_ms() + t->timeout_ms;
      continue;
    }
    struct pollfd fds[2] = { { .fd = t->sock, .events = POLLIN }, { .fd = t->wake[0], .events = POLLIN } };
    int ready = poll(fds, 2, (int)(deadline - now));
    if (ready < 0) {
      if (errno == EINTR) continue;
      goto socket_failed;
    }
    /* The flag is stored before the wake byte is written: reading it (acquire) makes abort_* visible. */
    if (atomic_load(&t->abort_requested)) {
      t->result = DONE_ABORTED;
      send_error(t, (const struct sockaddr *)&t->peer, t->peer_len, t->abort_code, t->abort_message);
      return;
    }
    if (!(fds[0].revents & (POLLIN | POLLERR))) continue;

    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(t->sock, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
    if (n < 0) {
      /* ECONNREFUSED is an ICMP error for an earlier send: the missing ACK will tell. */
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNREFUSED) continue;
      goto socket_failed;
    }
    if (!same_peer(t, &from)) {
      send_error(t, (const struct sockaddr *)&from, from_len, 5, "Unknown transfer ID");
      continue;
    }
    if (n < 4 || buf[0] != 0) continue; /* malformed: ignored, the timer still runs */
    if (buf[1] == OP_ERROR) {
      t->result = DONE_CLIENT_ABORT;
      t->client_code = (uint16_t)((buf[2] << 8) | buf[3]);
      size_t len = 0;
      while (4 + len < (size_t)n && buf[4 + len] != 0 && len < MESSAGE_MAX) len++;
      memcpy(t->message, buf + 4, len);
      t->message_len = len;
      return;
    }
    if (buf[1] != OP_ACK) continue; /* anything else is ignored, as tftpd-hpa does */
    uint16_t block = (uint16_t)((buf[2] << 8) | buf[3]);

    if (in_oack) {
      if (block != 0) continue;
      in_oack = 0;
      atomic_store(&t->progressed, 1);
      tries = 0;
      if (fill(t) < 0) goto source_failed;
      deadline = now_ms() + t->timeout_ms;
      continue;
    }
    /* Only an ACK inside the window in flight moves anything: old and duplicate ACKs are
       dropped, which is what prevents the Sorcerer's Apprentice bug. */
    uint32_t index = (uint16_t)(block - (uint16_t)(t->win_start & 0xffff));
    if (index >= t->win_len) continue;
    atomic_store(&t->progressed, 1);
    for (uint32_t i = 0; i <= index; i++) t->bytes += t->slot_len[(t->win_start + i) % t->windowsize] - 4;
    t->win_start += index + 1;
    t->win_len -= index + 1;
    tries = 0;
    if (t->last_read && t->win_len == 0) continue; /* done at the top of the loop */
    /* An ACK short of the window's end means the client dropped the rest (RFC 7440 section 4). */
    resend_window(t);
    if (fill(t) < 0) goto source_failed;
    deadline = now_ms() + t->timeout_ms;
  }

source_failed:
  t->result = DONE_SOURCE;
  {
    char text[MESSAGE_MAX + 1];
    memcpy(text, t->message, t->message_len);
    text[t->message_len] = 0;
    send_error(t, (const struct sockaddr *)&t->peer, t->peer_len, 0, text);
  }
  return;
socket_failed:
  t->result = DONE_SOCKET;
  {
    char text[MESSAGE_MAX];
    snprintf(text, sizeof text, "socket error: %s", strerror(errno));
    set_message(t, text);
  }
}

static void *run(void *arg) {
  transfer *t = arg;
  pump(t);
  atomic_store(&t->ended, 1);
  close(t->sock);
  t->sock = -1;
  /* After this call the main thread may free t: only the local copy is used from here on. */
  napi_threadsafe_function tsfn = t->tsfn;
  napi_call_threadsafe_function(tsfn, t, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void free_transfer(transfer *t) {
  if (t->sock >= 0) close(t->sock);
  if (t->wake[0] >= 0) close(t->wake[0]);
  if (t->wake[1] >= 0) close(t->wake[1]);
  free(t->oack);
  free(t->slots);
  free(t->slot_len);
  free(t->ahead);
  free(t);
}

static const char *const result_names[] = { "ok", "timeout", "client-abort", "source", "aborted", "socket" };

/* Main thread: hands the outcome to the JS callback, then frees the transfer. */
static void deliver(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  handle *h = context;
  transfer *t = data;
  h->finished = 1;
  h->progressed = atomic_load(&t->progressed);
  h->t = NULL;
  if (env != NULL) {
    napi_value cb, result, value, global;
    napi_get_reference_value(env, t->callback, &cb);
    napi_create_object(env, &result);
    napi_create_string_utf8(env, result_names[t->result], NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, result, "result", value);
    napi_create_double(env, (double)t->bytes, &value);
    napi_set_named_property(env, result, "bytes", value);
    napi_create_uint32(env, t->retransmits, &value);
    napi_set_named_property(env, result, "retransmits", value);
    napi_create_uint32(env, t->client_code, &value);
    napi_set_named_property(env, result, "clientCode", value);
    napi_create_buffer_copy(env, t->message_len, t->message, NULL, &value);
    napi_set_named_property(env, result, "message", value);
    napi_delete_reference(env, t->callback);
    napi_get_global(env, &global);
    free_transfer(t);
    if (h->orphaned) free(h);
    napi_call_function(env, global, cb, 1, &result, NULL);
    return;
  }
  free_transfer(t);
  if (h->orphaned) free(h);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  handle *h = data;
  if (h->finished) free(h);
  else h->orphaned = 1; /* deliver() still needs it; both run on the main thread */
}

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "tftp pump: " #call " failed");                                  \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

static int get_string(napi_env env, napi_value obj, const char *name, char *out, size_t cap) {
  napi_value v;
  size_t len;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  return napi_get_value_string_utf8(env, v, out, cap, &len) == napi_ok ? 0 : -1;
}

static int parse_address(const char *text, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof *v4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof *v6;
    return 0;
  }
  return -1;
}

/* start({ local, peer, peerPort, fd, size, blksize, windowsize, timeoutMs, retries, oack?, timeoutMessage }, onDone) -> handle */
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "tftp pump: start(params, onDone)");
    return NULL;
  }
  napi_value params = argv[0];
  char local[64], peer[64];
  uint32_t peer_port, fd, blksize, windowsize, timeout_ms, retries;
  double size;
  napi_value v;
  if (get_string(env, params, "local", local, sizeof local) || get_string(env, params, "peer", peer, sizeof peer) ||
      get_u32(env, params, "peerPort", &peer_port) || get_u32(env, params, "fd", &fd) || get_u32(env, params, "blksize", &blksize) ||
      get_u32(env, params, "windowsize", &windowsize) || get_u32(env, params, "timeoutMs", &timeout_ms) ||
      get_u32(env, params, "retries", &retries) || napi_get_named_property(env, params, "size", &v) != napi_ok ||
      napi_get_value_double(env, v, &size) != napi_ok) {
    napi_throw_type_error(env, NULL, "tftp pump: bad parameters");
    return NULL;
  }
  if (blksize < 8 || blksize > 65464 || windowsize < 1 || windowsize > 64 || !(size >= 0 && size <= 9007199254740991.0) ||
      timeout_ms < 1 || timeout_ms > 3600000 || retries > 1000 || peer_port < 1 || peer_port > 65535) {
    napi_throw_range_error(env, NULL, "tftp pump: parameter out of range");
    return NULL;
  }

  transfer *t = calloc(1, sizeof *t);
  if (!t) {
    napi_throw_error(env, NULL, "tftp pump: out of memory");
    return NULL;
  }
  t->sock = -1;
  t->wake[0] = t->wake[1] = -1;
  t->file_fd = (int)fd;
  t->size = (uint64_t)size;
  t->blksize = blksize;
  t->windowsize = windowsize;
  t->timeout_ms = timeout_ms;
  t->retries = retries;
  t->win_start = 1;
  get_string(env, params, "timeoutMessage", t->timeout_message, sizeof t->timeout_message);

  const char *failure = NULL;
  struct sockaddr_storage local_addr;
  socklen_t local_len;
  if (parse_address(local, 0, &local_addr, &local_len) || parse_address(peer, peer_port, &t->peer, &t->peer_len) ||
      local_addr.ss_family != t->peer.ss_family)
    failure = "tftp pump: addresses are not IP literals of one family";

  bool has_oack = false;
  if (!failure && napi_has_named_property(env, params, "oack", &has_oack) == napi_ok && has_oack) {
    napi_value oack;
    napi_valuetype type = napi_undefined;
    if (napi_get_named_property(env, params, "oack", &oack) == napi_ok && napi_typeof(env, oack, &type) == napi_ok && type != napi_undefined) {
      void *data;
      size_t len;
      if (napi_get_buffer_info(env, oack, &data, &len) != napi_ok || len == 0) failure = "tftp pump: oack must be a Buffer";
      else if (!(t->oack = malloc(len))) failure = "tftp pump: out of memory";
      else {
        memcpy(t->oack, data, len);
        t->oack_len = len;
      }
    }
  }
  if (!failure) {
    t->slots = malloc((size_t)windowsize * (4 + blksize));
    t->slot_len = calloc(windowsize, sizeof *t->slot_len);
    t->ahead = malloc(size < READ_AHEAD ? (size_t)size + 1 : READ_AHEAD);
    if (!t->slots || !t->slot_len || !t->ahead) failure = "tftp pump: out of memory";
  }
  char errtext[MESSAGE_MAX];
  if (!failure) {
    t->sock = socket(t->peer.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (t->sock < 0 || bind(t->sock, (struct sockaddr *)&local_addr, local_len) < 0 || pipe2(t->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
      snprintf(errtext, sizeof errtext, "tftp pump: transfer socket: %s", strerror(errno));
      failure = errtext;
    }
  }
  if (failure) {
    free_transfer(t);
    napi_throw_error(env, NULL, failure);
    return NULL;
  }

  handle *h = calloc(1, sizeof *h);
  napi_value name, external;
  if (!h || napi_create_reference(env, argv[1], 1, &t->callback) != napi_ok ||
      napi_create_string_utf8(env, "forseti tftp pump", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, h, deliver, &t->tsfn) != napi_ok) {
    if (t->callback) napi_delete_reference(env, t->callback);
    free(h);
    free_transfer(t);
    napi_throw_error(env, NULL, "tftp pump: could not set up the transfer");
    return NULL;
  }
  h->t = t;
  if (napi_create_external(env, h, finalize_handle, NULL, &external) != napi_ok) {
    napi_delete_reference(env, t->callback);
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    free(h);
    free_transfer(t);
    napi_throw_error(env, NULL, "tftp pump: could not set up the transfer");
    return NULL;
  }

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t thread;
  /* Signals stay with Node's threads: the pump never sees one (no EINTR storms, no handler runs here). */
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  int rc = pthread_create(&thread, &attr, run, t);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    h->t = NULL;
    h->finished = 1;
    napi_delete_reference(env, t->callback);
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    free_transfer(t);
    snprintf(errtext, sizeof errtext, "tftp pump: no thread for the transfer: %s", strerror(rc));
    napi_throw_error(env, NULL, errtext);
    return NULL;
  }
  return external;
}

static handle *get_handle(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

/* abort(handle, code, message): the thread sends ERROR(code, message) and ends; no-op once done. */
static napi_value abort_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  handle *h = argc >= 3 ? get_handle(env, argv[0]) : NULL;
  if (!h) {
    napi_throw_type_error(env, NULL, "tftp pump: abort(handle, code, message)");
    return NULL;
  }
  if (h->finished || !h->t || atomic_load(&h->t->abort_requested)) return NULL;
  transfer *t = h->t;
  uint32_t code = 0;
  size_t len;
  napi_get_value_uint32(env, argv[1], &code);
  napi_get_value_string_utf8(env, argv[2], t->abort_message, sizeof t->abort_message, &len);
  t->abort_code = (uint16_t)code;
  atomic_store(&t->abort_requested, 1);
  ssize_t r;
  do r = write(t->wake[1], "x", 1);
  while (r < 0 && errno == EINTR);
  return NULL;
}

/* state(handle): bit 0 once the client has acknowledged anything, bit 1 once the transfer is over. */
static napi_value state(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  handle *h = argc >= 1 ? get_handle(env, argv[0]) : NULL;
  if (!h) {
    napi_throw_type_error(env, NULL, "tftp pump: state(handle)");
    return NULL;
  }
  uint32_t bits = h->t != NULL ? (atomic_load(&h->t->progressed) ? 1u : 0u) | (atomic_load(&h->t->ended) ? 2u : 0u) : (h->progressed ? 1u : 0u) | 2u;
  CHECK(napi_create_uint32(env, bits, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "start", NULL, start, NULL, NULL, NULL, napi_default, NULL },
    { "abort", NULL, abort_transfer, NULL, NULL, NULL, napi_default, NULL },
    { "state", NULL, state, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
