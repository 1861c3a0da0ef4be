// N-API surface of the TFTP engine (see engine.h):
//   createEngine(threads) -> engine          closeEngine(engine)  (aborts what runs, joins the workers)
//   start(engine, params, onDone) -> handle  abort(handle, code, message)  state(handle)
// Each transfer's outcome reaches its onDone once, on the main thread, through the engine's one
// thread-safe function; the engine keeps the event loop alive only while transfers run.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* What JS holds of a transfer: survives it, so a late abort() or state() finds it inert. */
struct handle {
  transfer *t;
  int finished;   /* main thread only */
  int progressed; /* copied from the transfer when it is delivered */
  int orphaned;   /* JS dropped the handle while the transfer ran: delivery frees it */
};

/* What JS holds of an engine. It and the thread-safe function each keep `e` alive; the last one frees it. */
typedef struct engine_box {
  engine e;
  int external_gone;
  int tsfn_gone;
} engine_box;

static const char *const result_names[] = { "ok", "timeout", "client-abort", "source", "aborted", "socket" };

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "tftp engine: " #call " failed");                                \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static void set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

/* Main thread: hands a finished transfer's outcome to its callback, then frees it. */
static void deliver(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  engine *e = context;
  transfer *t = data;
  handle *h = t->js;
  h->finished = 1;
  h->progressed = atomic_load(&t->progressed);
  h->t = NULL;
  if (--e->active == 0 && env != NULL && !e->closed) napi_unref_threadsafe_function(env, e->tsfn);
  if (env == NULL) {
    transfer_free(t);
    if (h->orphaned) free(h);
    return;
  }
  napi_value cb, result, value, global;
  napi_get_reference_value(env, t->callback, &cb);
  napi_create_object(env, &result);
  napi_create_string_utf8(env, result_names[t->result], NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "result", value);
  set_number(env, result, "bytes", (double)t->bytes);
  set_number(env, result, "retransmits", t->retransmits);
  set_number(env, result, "clientCode", t->client_code);
  napi_create_buffer_copy(env, t->message_len, t->message, NULL, &value);
  napi_set_named_property(env, result, "message", value);
  napi_delete_reference(env, t->callback);
  transfer_free(t);
  if (h->orphaned) free(h);
  napi_get_global(env, &global);
  napi_call_function(env, global, cb, 1, &result, NULL);
}

static void tsfn_finalized(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_box *box = data;
  box->tsfn_gone = 1;
  if (box->external_gone) free(box);
}

static void close_engine_box(engine_box *box) {
  if (box->e.closed) return;
  box->e.closed = 1;
  engine_stop_workers(&box->e);
  napi_release_threadsafe_function(box->e.tsfn, napi_tsfn_release);
}

static void engine_finalized(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_box *box = data;
  close_engine_box(box);
  box->external_gone = 1;
  if (box->tsfn_gone) free(box);
}

static napi_value create_engine(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name, external;
  uint32_t threads = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &threads) != napi_ok || threads < 1 || threads > 64) {
    napi_throw_range_error(env, NULL, "tftp engine: createEngine(threads) takes 1 to 64 threads");
    return NULL;
  }
  engine_box *box = calloc(1, sizeof *box);
  if (!box) {
    napi_throw_error(env, NULL, "tftp engine: out of memory");
    return NULL;
  }
  if (napi_create_string_utf8(env, "forseti tftp engine", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, box, tsfn_finalized, &box->e, deliver, &box->e.tsfn) != napi_ok) {
    free(box);
    napi_throw_error(env, NULL, "tftp engine: could not create its thread-safe function");
    return NULL;
  }
  napi_unref_threadsafe_function(env, box->e.tsfn);
  char err[128];
  if (engine_start_workers(&box->e, threads, err, sizeof err) < 0) {
    box->e.closed = 1;
    box->external_gone = 1;
    napi_release_threadsafe_function(box->e.tsfn, napi_tsfn_release); /* frees box once finalized */
    char text[192];
    snprintf(text, sizeof text, "tftp engine: could not start its threads: %s", err);
    napi_throw_error(env, NULL, text);
    return NULL;
  }
  if (napi_create_external(env, box, engine_finalized, NULL, &external) != napi_ok) {
    close_engine_box(box);
    box->external_gone = 1;
    napi_throw_error(env, NULL, "tftp engine: could not create the engine");
    return NULL;
  }
  return external;
}

static engine_box *get_engine(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

static napi_value close_engine(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_box *box = argc >= 1 ? get_engine(env, argv[0]) : NULL;
  if (!box) {
    napi_throw_type_error(env, NULL, "tftp engine: closeEngine(engine)");
    return NULL;
  }
  close_engine_box(box);
  return NULL;
}

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

/* The transfer's parameters, its OACK copied and its socket (its TID) bound; NULL with `failure` set. */
static transfer *prepare(napi_env env, napi_value params, const char **failure, char *errtext, size_t errlen) {
  char local[64], peer[64];
  uint32_t peer_port, fd, blksize, windowsize, timeout_ms, retries;
  double size;
  napi_value v;
  if (get_string(env, params, "local", local, sizeof local) || get_string(env, params, "peer", peer, sizeof peer) ||
      get_u32(env, params, "peerPort", &peer_port) || get_u32(env, params, "fd", &fd) || get_u32(env, params, "blksize", &blksize) ||
      get_u32(env, params, "windowsize", &windowsize) || get_u32(env, params, "timeoutMs", &timeout_ms) ||
      get_u32(env, params, "retries", &retries) || napi_get_named_property(env, params, "size", &v) != napi_ok ||
      napi_get_value_double(env, v, &size) != napi_ok) {
    *failure = "tftp engine: bad parameters";
    return NULL;
  }
  if (blksize < 8 || blksize > BLKSIZE_MAX || windowsize < 1 || windowsize > WINDOW_MAX || !(size >= 0 && size <= 9007199254740991.0) ||
      timeout_ms < 1 || timeout_ms > 3600000 || retries > 1000 || peer_port < 1 || peer_port > 65535) {
    *failure = "tftp engine: parameter out of range";
    return NULL;
  }
  transfer *t = calloc(1, sizeof *t);
  if (!t) {
    *failure = "tftp engine: out of memory";
    return NULL;
  }
  t->sock = -1;
  t->file_fd = (int)fd;
  t->size = (uint64_t)size;
  t->blksize = blksize;
  t->last_block = t->size / blksize + 1;
  t->windowsize = windowsize;
  t->timeout_ms = timeout_ms;
  t->retries = retries;
  t->heap_index = HEAP_NONE;
  get_string(env, params, "timeoutMessage", t->timeout_message, sizeof t->timeout_message);

  struct sockaddr_storage local_addr;
  socklen_t local_len;
  if (parse_address(local, 0, &local_addr, &local_len) || parse_address(peer, peer_port, &t->peer, &t->peer_len) ||
      local_addr.ss_family != t->peer.ss_family)
    *failure = "tftp engine: addresses are not IP literals of one family";

  bool has_oack = false;
  if (!*failure && napi_has_named_property(env, params, "oack", &has_oack) == napi_ok && has_oack) {
    napi_value oack;
    napi_valuetype type = napi_undefined;
    if (napi_get_named_property(env, params, "oack", &oack) == napi_ok && napi_typeof(env, oack, &type) == napi_ok && type != napi_undefined) {
      void *data;
      size_t len;
      if (napi_get_buffer_info(env, oack, &data, &len) != napi_ok || len == 0) *failure = "tftp engine: oack must be a Buffer";
      else if (!(t->oack = malloc(len))) *failure = "tftp engine: out of memory";
      else {
        memcpy(t->oack, data, len);
        t->oack_len = len;
      }
    }
  }
  if (!*failure) {
    t->sock = socket(t->peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->sock < 0 || bind(t->sock, (struct sockaddr *)&local_addr, local_len) < 0) {
      snprintf(errtext, errlen, "tftp engine: transfer socket: %s", strerror(errno));
      *failure = errtext;
    }
  }
  if (*failure) {
    transfer_free(t);
    return NULL;
  }
  return t;
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  handle *h = data;
  if (h->finished) free(h);
  else h->orphaned = 1; /* delivery still needs it; both run on the main thread */
}

/* start(engine, { local, peer, peerPort, fd, size, blksize, windowsize, timeoutMs, retries, oack?, timeoutMessage }, onDone) -> handle */
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], external;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_box *box = argc >= 3 ? get_engine(env, argv[0]) : NULL;
  if (!box) {
    napi_throw_type_error(env, NULL, "tftp engine: start(engine, params, onDone)");
    return NULL;
  }
  if (box->e.closed) {
    napi_throw_error(env, NULL, "tftp engine: closed");
    return NULL;
  }
  const char *failure = NULL;
  char errtext[MESSAGE_MAX];
  transfer *t = prepare(env, argv[1], &failure, errtext, sizeof errtext);
  if (!t) {
    napi_throw_error(env, NULL, failure);
    return NULL;
  }
  handle *h = calloc(1, sizeof *h);
  if (!h || napi_create_reference(env, argv[2], 1, &t->callback) != napi_ok) {
    free(h);
    transfer_free(t);
    napi_throw_error(env, NULL, "tftp engine: could not set up the transfer");
    return NULL;
  }
  if (napi_create_external(env, h, finalize_handle, NULL, &external) != napi_ok) {
    napi_delete_reference(env, t->callback);
    free(h);
    transfer_free(t);
    napi_throw_error(env, NULL, "tftp engine: could not set up the transfer");
    return NULL;
  }
  h->t = t;
  t->js = h;
  if (box->e.active++ == 0) napi_ref_threadsafe_function(env, box->e.tsfn);
  engine_submit(&box->e, t);
  return external;
}

static handle *get_handle(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

/* abort(handle, code, message): the worker sends ERROR(code, message) and ends the transfer; a no-op once it ended. */
static napi_value abort_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  handle *h = argc >= 3 ? get_handle(env, argv[0]) : NULL;
  if (!h) {
    napi_throw_type_error(env, NULL, "tftp engine: abort(handle, code, message)");
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
  engine_request_abort(t);
  return NULL;
}

/* state(handle): bit 0 once the client has acknowledged anything, bit 1 once the transfer is over. */
static napi_value state(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  handle *h = argc >= 1 ? get_handle(env, argv[0]) : NULL;
  if (!h) {
    napi_throw_type_error(env, NULL, "tftp engine: state(handle)");
    return NULL;
  }
  uint32_t bits = h->t != NULL ? (atomic_load(&h->t->progressed) ? 1u : 0u) | (atomic_load(&h->t->ended) ? 2u : 0u) : (h->progressed ? 1u : 0u) | 2u;
  CHECK(napi_create_uint32(env, bits, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "createEngine", NULL, create_engine, NULL, NULL, NULL, napi_default, NULL },
    { "closeEngine", NULL, close_engine, NULL, NULL, NULL, napi_default, NULL },
    { "start", NULL, start, NULL, NULL, NULL, napi_default, NULL },
    { "abort", NULL, abort_transfer, NULL, NULL, NULL, napi_default, NULL },
    { "state", NULL, state, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
