// sendfile(2) for Node's HTTP server: the body of a response goes from the file to the socket in
// the kernel, without being read into user space and written back (Node has no sendfile). Driven by
// the socket's writability on Node's own event loop (a uv_poll handle): each time the socket can
// take more, one non-blocking sendfile hands it what fits. No thread, and nothing per job but this
// struct, however many downloads run.
//
// The socket is dup()ed: Node may close its own descriptor at any time (the client went away, the
// server stops), and the number could then be reused by an unrelated file before this job notices.
// The duplicate keeps the connection itself open until the job ends, which JS ensures at once when
// the response closes (cancel).
//
//   start(socketFd, fileFd, offset, length, onDone(error?: string, bytes: number)) -> job
//   cancel(job)   ends the job; onDone is still called, once, with "cancelled"
//
// JS side: src/serve/http/native-sendfile.ts. Everything here runs on the main thread.

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <uv.h>

#define NAPI_VERSION 8
#include <node_api.h>

/* One sendfile call moves at most this much, so a fast reader cannot hold the event loop for long. */
#define CALL_MAX (8u * 1024 * 1024)

typedef struct job {
  uv_poll_t poll;
  int sock; /* our duplicate */
  int file;
  off_t offset;
  uint64_t left;
  uint64_t sent;
  int finished;
  char error[128];
  napi_env env;
  napi_ref callback;
  napi_ref self; /* keeps the JS handle (and so this struct) alive while the job runs */
  napi_async_context context;
} job;

/* Runs once the poll handle is closed: the last use of the job, which is freed with its JS handle. */
static void closed(uv_handle_t *handle) {
  job *j = handle->data;
  close(j->sock);
  napi_env env = j->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb = NULL, resource = NULL, args[2];
  if (j->callback) napi_get_reference_value(env, j->callback, &cb);
  napi_get_reference_value(env, j->self, &resource);
  if (j->error[0]) napi_create_string_utf8(env, j->error, NAPI_AUTO_LENGTH, &args[0]);
  else napi_get_undefined(env, &args[0]);
  napi_create_double(env, (double)j->sent, &args[1]);
  if (j->callback) napi_delete_reference(env, j->callback);
  napi_delete_reference(env, j->self);
  napi_async_context context = j->context;
  if (cb && resource && context) napi_make_callback(env, context, resource, cb, 2, args, NULL);
  if (context) napi_async_destroy(env, context);
  napi_close_handle_scope(env, scope);
}

/*
 * Corked while the body goes, as nginx's `tcp_nopush` does: Node sets TCP_NODELAY on its sockets, so without the cork
 * each sendfile call's bytes leave at once, in more and smaller segments than the socket could send, and the receiver
 * pays per segment. In a boot storm of 200 machines fetching only over HTTP (bench/boot-storm.bench.ts with
 * BOOT_STORM_SKIP=tftp), the cork brought the last initrd from 6.62-6.70 s (four runs) to 5.47-6.76 s and the
 * generator's CPU from 6.7-6.8 s to 5.4-6.4 s; the server's own CPU did not move (3.1-3.3 s either way), which is
 * why an earlier A/B that looked only at it found nothing. Uncorking at the end sends what is left at once.
 */
static void cork(job *j, int on) {
  setsockopt(j->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/*
 * At most this much of a body waits unsent in the kernel (TCP_NOTSENT_LOWAT): the socket takes more, and sendfile is
 * called again, only once less is queued. What is in flight still grows with the congestion window, so a fast link
 * is not held back; what is bounded is the backlog behind it, which otherwise grows to the send buffer's 4 MB per
 * download. Many downloads at once then fill the kernel's TCP memory with bytes nobody can take yet, and under that
 * pressure packets are dropped and connections crawl. Measured (bench/boot-storm.bench.ts, one machine playing the
 * clients): 1,000 machines, the last initrd after 130-232 s without (the slowest initrd 91-96 s; one connection found
 * closed with 4 MB unsent, paced by BBR at 6.8 kbit/s), after 42-47 s with (slowest 10 s); 200 machines, 9.4-10.9 s
 * without, 7.3-8.3 s with, the clients' CPU 9.7-11.3 s against 6.9-8.0 s, the server's HTTP CPU 3.2-3.6 s against
 * 4.3-4.8 s (more, shorter sendfile calls).
 */
#define UNSENT_MAX (256 * 1024)

static void bound_unsent(job *j) {
  int most = UNSENT_MAX;
  setsockopt(j->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &most, sizeof most);
}

static void finish(job *j, const char *error) {
  if (j->finished) return;
  j->finished = 1;
  cork(j, 0);
  if (error) snprintf(j->error, sizeof j->error, "%s", error);
  uv_close((uv_handle_t *)&j->poll, closed);
}

static void on_writable(uv_poll_t *poll, int status, int events) {
  job *j = poll->data;
  if (j->finished) return;
  /* An error on the socket shows in sendfile too: it names it. */
  while (j->left > 0) {
    size_t count = j->left < CALL_MAX ? (size_t)j->left : CALL_MAX;
    ssize_t n = sendfile(j->sock, j->file, &j->offset, count);
    if (n > 0) {
      j->left -= (uint64_t)n;
      j->sent += (uint64_t)n;
      if ((size_t)n < count) return; /* the socket is full: wait until it can take more */
      continue;
    }
    if (n == 0) {
      finish(j, "the file is shorter than when the response started");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    char text[96];
    snprintf(text, sizeof text, "sendfile: %s", strerror(errno));
    finish(j, text);
    return;
  }
  (void)status;
  (void)events;
  finish(j, NULL);
}

static void free_job(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "http sendfile: " #call " failed");                              \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], external, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t sock, file;
  double offset, length;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_get_value_int32(env, argv[1], &file) != napi_ok ||
      napi_get_value_double(env, argv[2], &offset) != napi_ok || napi_get_value_double(env, argv[3], &length) != napi_ok ||
      sock < 0 || file < 0 || !(offset >= 0 && offset <= 9007199254740991.0) || !(length >= 0 && length <= 9007199254740991.0)) {
    napi_throw_type_error(env, NULL, "http sendfile: start(socketFd, fileFd, offset, length, onDone)");
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, NULL, "http sendfile: out of memory");
    return NULL;
  }
  if (napi_create_external(env, j, free_job, NULL, &external) != napi_ok) {
    free(j);
    napi_throw_error(env, NULL, "http sendfile: could not set up the job");
    return NULL;
  }
  /* From here the GC frees j, once `self` is released in closed() (or now, when setting up fails). */
  j->env = env;
  j->file = file;
  j->offset = (off_t)offset;
  j->left = (uint64_t)length;
  if (napi_create_reference(env, external, 1, &j->self) != napi_ok) {
    napi_throw_error(env, NULL, "http sendfile: could not set up the job");
    return NULL;
  }
  j->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  int rc = j->sock < 0 ? uv_translate_sys_error(errno) : uv_poll_init(loop, &j->poll, j->sock);
  if (rc != 0) {
    if (j->sock >= 0) close(j->sock);
    napi_delete_reference(env, j->self);
    char text[96];
    snprintf(text, sizeof text, "http sendfile: %s", uv_strerror(rc));
    napi_throw_error(env, NULL, text);
    return NULL;
  }
  j->poll.data = j;
  cork(j, 1);
  bound_unsent(j);
  if (napi_create_reference(env, argv[4], 1, &j->callback) != napi_ok ||
      napi_create_string_utf8(env, "forseti http sendfile", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, external, name, &j->context) != napi_ok) {
    finish(j, "setup failed"); /* closed() releases what was made; no callback without all of it */
    napi_throw_error(env, NULL, "http sendfile: could not set up the job");
    return NULL;
  }
  rc = uv_poll_start(&j->poll, UV_WRITABLE | UV_DISCONNECT, on_writable);
  if (rc != 0) {
    char text[96];
    snprintf(text, sizeof text, "http sendfile: poll: %s", uv_strerror(rc));
    finish(j, text); /* reported through onDone, like any other failure */
  }
  return external;
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "http sendfile: cancel(job)");
    return NULL;
  }
  finish(data, "cancelled");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "start", NULL, start, NULL, NULL, NULL, napi_default, NULL },
    { "cancel", NULL, cancel, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
