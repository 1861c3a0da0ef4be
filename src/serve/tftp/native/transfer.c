// The protocol of one read transfer, on its worker: the optional OACK handshake (RFC 2347), then
// windows of DATA (RFC 7440; a window of 1 is RFC 1350 lock-step) until the last block is
// acknowledged, with retransmission of the unanswered OACK or window. The rules are those of
// read-transfer.ts, the JavaScript pump, which serves what the engine does not (generated content,
// netascii, a machine where this was not built):
//  - only an ACK inside the window in flight moves anything; old and duplicate ACKs are dropped,
//    which is what prevents the Sorcerer's Apprentice bug;
//  - an ACK short of the window's end means the client lost the rest: the window restarts after it;
//  - block numbers go out modulo 65536 and are compared the same way, so a transfer rolls over;
//  - exactly `size` bytes are sent (the tsize the client was told): a file that grew is cut, one
//    that shrank is an error;
//  - a datagram from another address or port gets ERROR 5 and changes nothing;
//  - anything else from the client is ignored, as tftpd-hpa does; the timer still runs.

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"

static void set_message(transfer *t, const char *text) {
  size_t n = strlen(text);
  if (n > MESSAGE_MAX) n = MESSAGE_MAX;
  memcpy(t->message, text, n);
  t->message_len = n;
}

/* Best effort: a failed send surfaces as a missing ACK, and so as a retransmission. */
static void send_to(transfer *t, const struct sockaddr *to, socklen_t to_len, const uint8_t *buf, size_t len) {
  ssize_t r;
  do r = sendto(t->sock, buf, len, 0, to, to_len);
  while (r < 0 && errno == EINTR);
}

static void send_error_to(transfer *t, const struct sockaddr *to, socklen_t to_len, uint16_t code, const char *text) {
  uint8_t buf[4 + MESSAGE_MAX + 1];
  size_t n = strnlen(text, MESSAGE_MAX);
  buf[0] = 0;
  buf[1] = OP_ERROR;
  buf[2] = (uint8_t)(code >> 8);
  buf[3] = (uint8_t)code;
  memcpy(buf + 4, text, n);
  buf[4 + n] = 0;
  send_to(t, to, to_len, buf, 5 + n);
}

static void send_error(transfer *t, uint16_t code, const char *text) {
  send_error_to(t, (const struct sockaddr *)&t->peer, t->peer_len, code, text);
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

static uint32_t block_len(const transfer *t, uint64_t block) {
  uint64_t left = t->size - (block - 1) * t->blksize;
  return left < t->blksize ? (uint32_t)left : t->blksize;
}

static void set_writable(worker *w, transfer *t, int on) {
  if (t->want_writable == on) return;
  struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = t };
  if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, t->sock, &ev) == 0) t->want_writable = on;
}

static void fail(worker *w, transfer *t, enum outcome result, const char *text) {
  t->result = result;
  set_message(t, text);
  if (result != DONE_SOCKET) send_error(t, 0, text);
  worker_end(w, t);
}

/* The unanswered OACK or window is due again after the timeout. */
static void arm(worker *w, transfer *t) {
  t->deadline = w->now + t->timeout_ms;
  if (t->heap_index != HEAP_NONE) return; /* its earlier key comes up first and is refreshed then */
  t->heap_key = t->deadline;
  if (heap_push(&w->timers, t) < 0) fail(w, t, DONE_SOURCE, "out of memory");
}

/* Reads exactly `len` bytes at `offset`; -1 with the message set (a file that shrank included). */
static int read_exact(transfer *t, uint8_t *buf, size_t len, uint64_t offset) {
  for (size_t done = 0; done < len;) {
    ssize_t r = pread(t->file_fd, buf + done, len - done, (off_t)(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      char text[MESSAGE_MAX];
      if (r < 0) snprintf(text, sizeof text, "reading file failed: %s", strerror(errno));
      else snprintf(text, sizeof text, "reading file failed: the file is shorter than when the transfer started");
      set_message(t, text);
      return -1;
    }
    done += (size_t)r;
  }
  return 0;
}

static uint8_t *grow(uint8_t **buf, size_t *cap, size_t want) {
  if (*cap >= want) return *buf;
  uint8_t *grown = realloc(*buf, want);
  if (!grown) return NULL;
  *buf = grown;
  *cap = want;
  return grown;
}

/*
 * The payload of blocks [first, first + count), contiguous: from the transfer's read-ahead when its
 * window is narrow and the client has shown up, else read into the worker's scratch buffer. NULL
 * with the message set when the file fails.
 */
static const uint8_t *payload(worker *w, transfer *t, uint64_t first, uint32_t count) {
  uint64_t start = (first - 1) * t->blksize;
  uint64_t end = (first - 1 + count) * t->blksize;
  if (end > t->size) end = t->size;
  size_t len = (size_t)(end - start);
  int narrow = (size_t)t->windowsize * t->blksize <= AHEAD_BYTES / 2;
  if (narrow && (t->ahead || atomic_load(&t->progressed))) {
    if (!t->ahead && !(t->ahead = malloc(AHEAD_BYTES))) {
      set_message(t, "out of memory");
      return NULL;
    }
    if (start < t->ahead_off || end > t->ahead_off + t->ahead_len) {
      size_t fill = t->size - start < AHEAD_BYTES ? (size_t)(t->size - start) : AHEAD_BYTES;
      t->ahead_len = 0;
      if (read_exact(t, t->ahead, fill, start) < 0) return NULL;
      t->ahead_off = start;
      t->ahead_len = fill;
    }
    return t->ahead + (start - t->ahead_off);
  }
  uint8_t *buf = grow(&w->scratch, &w->scratch_cap, len ? len : 1);
  if (!buf) {
    set_message(t, "out of memory");
    return NULL;
  }
  return read_exact(t, buf, len, start) < 0 ? NULL : buf;
}

/*
 * Hands the window's blocks from next_send on to the kernel, in one sendmmsg where there are
 * several. When the socket's send buffer is full, the rest waits for EPOLLOUT. -1 when the file failed.
 */
static int send_pending(worker *w, transfer *t) {
  uint64_t end = t->win_start + t->win_len;
  while (t->next_send < end) {
    uint32_t count = (uint32_t)(end - t->next_send);
    const uint8_t *data = payload(w, t, t->next_send, count);
    if (!data) return -1;
    struct iovec iov[WINDOW_MAX][2];
    struct mmsghdr msgs[WINDOW_MAX];
    for (uint32_t i = 0; i < count; i++) {
      uint64_t block = t->next_send + i;
      uint8_t *h = w->headers[i];
      h[0] = 0;
      h[1] = OP_DATA;
      h[2] = (uint8_t)(block >> 8);
      h[3] = (uint8_t)block;
      iov[i][0] = (struct iovec){ .iov_base = h, .iov_len = 4 };
      iov[i][1] = (struct iovec){ .iov_base = (void *)(data + (size_t)i * t->blksize), .iov_len = block_len(t, block) };
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &t->peer;
      msgs[i].msg_hdr.msg_namelen = t->peer_len;
      msgs[i].msg_hdr.msg_iov = iov[i];
      msgs[i].msg_hdr.msg_iovlen = 2;
    }
    uint32_t sent = 0;
    while (sent < count) {
      int r;
      if (count - sent == 1) r = sendmsg(t->sock, &msgs[sent].msg_hdr, 0) < 0 ? -1 : 1;
      else r = sendmmsg(t->sock, msgs + sent, count - sent, 0);
      if (r >= 0) {
        sent += (uint32_t)r;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->next_send += sent;
        set_writable(w, t, 1);
        return 0;
      }
      sent++; /* refused (an ICMP error, a firewall): surfaces as a missing ACK, like a lost datagram */
    }
    t->next_send += sent;
  }
  set_writable(w, t, 0);
  return 0;
}

/* Sends the window that starts at win_start: what is still unacknowledged, topped up to windowsize. */
static void send_window(worker *w, transfer *t) {
  uint64_t left = t->last_block - t->win_start + 1;
  t->win_len = left < t->windowsize ? (uint32_t)left : t->windowsize;
  t->next_send = t->win_start;
  if (send_pending(w, t) < 0) {
    char text[MESSAGE_MAX + 1];
    memcpy(text, t->message, t->message_len);
    text[t->message_len] = 0;
    fail(w, t, DONE_SOURCE, text);
    return;
  }
  arm(w, t);
}

void transfer_begin(worker *w, transfer *t) {
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, t->sock, &ev) < 0) {
    char text[MESSAGE_MAX];
    snprintf(text, sizeof text, "socket error: %s", strerror(errno));
    fail(w, t, DONE_SOCKET, text);
    return;
  }
  t->win_start = 1;
  if (t->oack) {
    t->in_oack = 1;
    send_to(t, (const struct sockaddr *)&t->peer, t->peer_len, t->oack, t->oack_len);
    arm(w, t);
  } else {
    send_window(w, t);
  }
}

static void on_ack(worker *w, transfer *t, uint16_t block) {
  if (t->in_oack) {
    if (block != 0) return;
    t->in_oack = 0;
    atomic_store(&t->progressed, 1);
    t->tries = 0;
    send_window(w, t);
    return;
  }
  uint32_t index = (uint16_t)(block - (uint16_t)t->win_start);
  if (index >= t->win_len) return;
  atomic_store(&t->progressed, 1);
  uint64_t acked = t->win_start + index;
  t->tries = 0;
  if (acked == t->last_block) {
    t->bytes = t->size;
    t->result = DONE_OK;
    worker_end(w, t);
    return;
  }
  t->bytes = acked * t->blksize;
  t->win_start = acked + 1;
  send_window(w, t);
}

static void on_datagram(worker *w, transfer *t, const uint8_t *buf, size_t n, const struct sockaddr_storage *from, socklen_t from_len) {
  if (!same_peer(t, from)) {
    send_error_to(t, (const struct sockaddr *)from, from_len, 5, "Unknown transfer ID");
    return;
  }
  if (n < 4 || buf[0] != 0) return;
  if (buf[1] == OP_ERROR) {
    t->result = DONE_CLIENT_ABORT;
    t->client_code = (uint16_t)((buf[2] << 8) | buf[3]);
    size_t len = 0;
    while (4 + len < n && buf[4 + len] != 0 && len < MESSAGE_MAX) len++;
    memcpy(t->message, buf + 4, len);
    t->message_len = len;
    worker_end(w, t);
    return;
  }
  if (buf[1] == OP_ACK) on_ack(w, t, (uint16_t)((buf[2] << 8) | buf[3]));
}

#define RECV_MAX (4 + MESSAGE_MAX + 1)

/*
 * One datagram per readiness event: a client sends one ACK per window, so there is almost never a
 * second one queued, and recvmmsg would pay for looking (level-triggered epoll reports any that is).
 */
void transfer_readable(worker *w, transfer *t) {
  uint8_t buf[RECV_MAX];
  struct sockaddr_storage from;
  struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
  struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1 };
  ssize_t n = recvmsg(t->sock, &msg, MSG_DONTWAIT);
  if (n < 0) {
    /* ICMP errors for earlier sends: the missing ACK will tell. */
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) return;
    char text[MESSAGE_MAX];
    snprintf(text, sizeof text, "socket error: %s", strerror(errno));
    fail(w, t, DONE_SOCKET, text);
    return;
  }
  on_datagram(w, t, buf, (size_t)n, &from, msg.msg_namelen);
}

void transfer_writable(worker *w, transfer *t) {
  if (send_pending(w, t) < 0) {
    char text[MESSAGE_MAX + 1];
    memcpy(text, t->message, t->message_len);
    text[t->message_len] = 0;
    fail(w, t, DONE_SOURCE, text);
  }
}

void transfer_timer(worker *w, transfer *t) {
  if (++t->tries > t->retries) {
    fail(w, t, DONE_TIMEOUT, t->timeout_message);
    return;
  }
  t->retransmits++;
  if (t->in_oack) {
    send_to(t, (const struct sockaddr *)&t->peer, t->peer_len, t->oack, t->oack_len);
    arm(w, t);
    return;
  }
  t->next_send = t->win_start;
  transfer_writable(w, t);
  if (!t->finished) arm(w, t);
}

void transfer_abort(worker *w, transfer *t, uint16_t code, const char *message) {
  t->result = DONE_ABORTED;
  send_error(t, code, message);
  worker_end(w, t);
}

void transfer_free(transfer *t) {
  if (t->sock >= 0) close(t->sock);
  free(t->ahead);
  free(t->oack);
  free(t);
}
