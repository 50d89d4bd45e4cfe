/*
 * uvcurl.h -- libcurl's multi interface driven by a libuv loop you own.
 *
 * GENERATED from src/capi/ by cbindgen (tests/c_api.rs checks that this file
 * is up to date; regenerate with `UVCURL_BLESS=1 cargo test --test c_api`).
 *
 * What it does: you create a uvcurl_multi on your uv_loop_t, configure CURL*
 * easy handles yourself, and add them with a completion callback. uvcurl
 * watches libcurl's sockets with uv_poll_t handles and its timeouts with a
 * uv_timer_t on your loop, and calls your callback exactly once per added
 * handle. Your own libuv work (timers, servers, ...) runs on the same loop.
 *
 * Lifecycle:
 *     uvcurl_multi_new(loop, &multi);
 *     uvcurl_multi_add(multi, easy, done_cb, userdata);   // any number of times
 *     uv_run(loop, UV_RUN_DEFAULT);                       // returns when idle
 *     uvcurl_multi_close(multi, closed_cb, userdata);     // cancels what runs
 *     uv_run(loop, UV_RUN_DEFAULT);                       // closed_cb runs here
 *     uv_loop_close(loop);                                // returns 0
 *
 * Ownership: the loop and every easy handle stay yours; uvcurl never frees
 * them. A uvcurl_multi is uvcurl's; it is freed after uvcurl_multi_close,
 * just before its closed callback runs.
 *
 * Return values: 0 (UVCURL_OK) or a negative UVCURL_E* code; uvcurl_strerror()
 * describes each. Output parameters are written only on success. Null
 * pointers, closed or already freed multis, double closes and easy handles
 * added twice are reported with a code, never a crash. A Rust panic inside
 * uvcurl never unwinds into your code (UVCURL_EPANIC).
 *
 * Threads: a multi belongs to the thread that created it, which must be the
 * thread that runs its loop. Calls from another thread return
 * UVCURL_EWRONGTHREAD. Callbacks run on that thread, from inside uv_run.
 * uvcurl_strerror, uvcurl_version and uvcurl_libuv_version may be called
 * from any thread.
 *
 * Callbacks: done and closed callbacks, and libcurl's own callbacks of an
 * added easy handle (CURLOPT_WRITEFUNCTION, ...), may call uvcurl_multi_add,
 * uvcurl_multi_cancel, uvcurl_multi_active, uvcurl_multi_curlm and
 * uvcurl_multi_close; work asked for while libcurl is running is done as
 * soon as it returns, so libcurl is never re-entered. No callback may call
 * uv_run or uv_loop_close. A write callback that cancelled its own transfer
 * (or closed its multi) returns the number of bytes it was given, as usual:
 * the transfer stops as soon as libcurl returns -- until then libcurl may call
 * it again with more data, which it may ignore -- and done gets
 * UVCURL_ECANCELED. Returning anything else makes libcurl fail the transfer
 * with CURLE_WRITE_ERROR, which done may then get instead.
 *
 * Which libcurl: uvcurl contains its own libcurl (8.22, with HTTP/2 and
 * OpenSSL) and exports its public curl_* functions. Easy handles of one
 * libcurl cannot be added to another libcurl's multi handle, so compile
 * against the curl/curl.h installed with uvcurl and never link -lcurl as
 * well. uvcurl runs curl_global_init once, at the first uvcurl_multi_new; the
 * host may call curl_global_cleanup only when it is done with uvcurl for good
 * (after the last closed callback), never before another uvcurl_multi_new.
 *
 * Which libuv: one per process. The library built for hosts
 * (vendor/install-c --system-libuv) contains no libuv: it links the system's
 * libuv.so.1 (1.44 or newer) and calls whichever libuv the process already
 * has -- the program's own -luv, the one luv or Neovim loaded, or the copy
 * that Node's executable exports. Compile against that libuv's uv.h, and link
 * `pkg-config --cflags --libs uvcurl` (libuvcurl plus -luv); a host that links
 * libuvcurl.a links its own -luv too. The default build instead carries
 * libuv 1.53 and exports its uv_* functions: then compile against the uv.h
 * installed with uvcurl and do not link -luv. uvcurl_libuv_version tells
 * which libuv uvcurl's calls reach; uvcurl_multi_new refuses one older than
 * 1.44.0 with UVCURL_EUVVERSION.
 */

#ifndef UVCURL_H
#define UVCURL_H

#include <curl/curl.h>
#include <uv.h>

/**
 * Success.
 */
#define UVCURL_OK 0

/**
 * An argument is invalid: a null pointer where one is required.
 */
#define UVCURL_EINVAL -1

/**
 * The multi is closed: `uvcurl_multi_close` was called on it (it may already
 * be released), or the pointer is not a multi returned by `uvcurl_multi_new`.
 */
#define UVCURL_ECLOSED -2

/**
 * The easy handle is already added to this multi and its callback has not run yet.
 */
#define UVCURL_EEXIST -3

/**
 * The easy handle is not in this multi (never added, or its callback already ran).
 */
#define UVCURL_ENOTFOUND -4

/**
 * Called from a thread other than the one that created the multi.
 */
#define UVCURL_EWRONGTHREAD -5

/**
 * Passed to a `uvcurl_done_cb`: the transfer was cancelled with
 * `uvcurl_multi_cancel`, or its multi was closed before it finished.
 */
#define UVCURL_ECANCELED -6

/**
 * libcurl's multi interface failed (for `uvcurl_multi_add`: typically the
 * easy handle is already in another multi handle).
 */
#define UVCURL_ECURLM -7

/**
 * A libuv call failed (creating or starting a handle on the loop).
 */
#define UVCURL_EUV -8

/**
 * Out of memory (libcurl could not create a handle).
 */
#define UVCURL_ENOMEM -9

/**
 * A bug in uvcurl was caught at the API boundary (a Rust panic); nothing was
 * unwound into the caller. The multi may be unusable; close it.
 */
#define UVCURL_EPANIC -10

/**
 * The libuv running in the process is older than the oldest one uvcurl
 * supports (1.44.0; see `uvcurl_libuv_version`). Returned by
 * `uvcurl_multi_new`, which then creates nothing.
 */
#define UVCURL_EUVVERSION -11

/**
 * A set of concurrent transfers driven by one libuv loop: a libcurl multi
 * handle plus the `uv_poll_t` and `uv_timer_t` handles that drive it.
 * Opaque; created by `uvcurl_multi_new`, released after `uvcurl_multi_close`.
 */
typedef struct uvcurl_multi uvcurl_multi;

/**
 * Called exactly once for every easy handle that `uvcurl_multi_add` accepted,
 * on the loop's thread.
 *
 * - `multi`: the multi the handle was added to.
 * - `easy`: the easy handle. It has already been removed from the multi and
 *   is the caller's again: it may be inspected (`curl_easy_getinfo`),
 *   reconfigured and added again, or freed with `curl_easy_cleanup`, here or
 *   later. One exception: with `result` `UVCURL_EEXIST` (only from
 *   `uvcurl_multi_submit`) this submission was refused because `easy` is
 *   still running from an earlier add or submit; it is NOT the caller's:
 *   free or reconfigure it only after that earlier transfer's `done` ran.
 * - `result`: libcurl's `CURLcode` for the transfer (`CURLE_OK`, 0, on
 *   success; an HTTP error status is still `CURLE_OK` unless
 *   `CURLOPT_FAILONERROR` is set) when it ran to its end, or a negative
 *   uvcurl code: `UVCURL_ECANCELED` if it was cancelled or its multi was
 *   closed first, `UVCURL_EUV` or `UVCURL_ECURLM` if the driver failed.
 * - `userdata`: the pointer given to `uvcurl_multi_add`.
 *
 * The callback may call `uvcurl_multi_add`, `uvcurl_multi_cancel`,
 * `uvcurl_multi_active`, `uvcurl_multi_curlm` and `uvcurl_multi_close` on
 * this or any other multi of the thread, and any libuv function except
 * `uv_run` and `uv_loop_close`. Inside it, `uvcurl_multi_active` no longer
 * counts this transfer (0 in the `done` of the last running one).
 */
typedef void (*uvcurl_done_cb)(uvcurl_multi *multi, CURL *easy, int result, void *userdata);

/**
 * Called once, on the loop's thread, when a multi closed with
 * `uvcurl_multi_close` has released everything it held: every libuv handle
 * is closed and freed, the libcurl multi handle is cleaned up, and the
 * `uvcurl_multi` is freed (do not use the pointer any more; calls with it
 * return `UVCURL_ECLOSED`). The loop no longer has anything of uvcurl's, so
 * once the host's own handles are closed `uv_run` returns and
 * `uv_loop_close` succeeds.
 *
 * `userdata` is the pointer given to `uvcurl_multi_close`.
 */
typedef void (*uvcurl_closed_cb)(void *userdata);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Creates a multi that runs its transfers on `loop`, and writes it to `*out`.
 *
 * - `loop`: an initialised loop, owned and run by the caller. uvcurl adds its
 *   handles to it (one timer, one poll handle per socket libcurl uses, and
 *   a check handle once transfers are started from callbacks) and never runs, closes or frees it. The loop must outlive the multi:
 *   keep running it until the `uvcurl_closed_cb` of `uvcurl_multi_close` ran.
 * - `out`: where the new multi is written, only on success.
 *
 * The multi belongs to the calling thread, which must be the thread that
 * runs `loop`: every other `uvcurl_multi_*` call on it must come from this
 * thread (others get `UVCURL_EWRONGTHREAD`). The multi must eventually be
 * passed to `uvcurl_multi_close`.
 *
 * The first call also runs `curl_global_init(CURL_GLOBAL_ALL)` once for the
 * process (which is not thread-safe if the host calls it concurrently).
 *
 * uvcurl cannot tell which thread runs a loop (it never reads a field of
 * `uv_loop_t`), so creating the multi on another thread is not detected
 * here; it is the caller's to avoid, and every later call from a thread
 * other than the creating one returns `UVCURL_EWRONGTHREAD`.
 *
 * Returns `UVCURL_OK`, `UVCURL_EINVAL` if `loop` or `out` is NULL,
 * `UVCURL_EUVVERSION` if the libuv running in the process is older than
 * 1.44.0, `UVCURL_ENOMEM`, `UVCURL_ECURLM` or `UVCURL_EUV` if libcurl or
 * libuv cannot create their handles, `UVCURL_EPANIC`.
 *
 * # Safety
 * `loop` must point to an initialised `uv_loop_t` of the libuv that uvcurl
 * calls (the one in the process: see "Which libcurl and libuv" above), and
 * `out` (if not null) to writable memory for a pointer.
 */
int uvcurl_multi_new(uv_loop_t *loop, uvcurl_multi **out);

/**
 * The libcurl multi handle (`CURLM *`) inside `multi`, for
 * `curl_multi_setopt` options uvcurl does not set itself (connection limits,
 * `CURLMOPT_PIPELINING`, ...).
 *
 * The handle stays owned by `multi`: do not clean it up, do not add or remove
 * easy handles with it, and do not set `CURLMOPT_SOCKETFUNCTION`,
 * `CURLMOPT_SOCKETDATA`, `CURLMOPT_TIMERFUNCTION` or `CURLMOPT_TIMERDATA`,
 * and do not call `curl_multi_perform`, `curl_multi_socket_action` or
 * `curl_multi_info_read` on it; uvcurl does all of that.
 *
 * Returns NULL if `multi` is NULL, closed or not from this thread.
 */
CURLM *uvcurl_multi_curlm(const uvcurl_multi *multi);

/**
 * Starts the transfer configured on `easy`: adds it to `multi`, and calls
 * `done` exactly once when it ends (see `uvcurl_done_cb`).
 *
 * The easy handle stays the caller's: uvcurl never frees it, and of its
 * options takes over only `CURLOPT_OPENSOCKETFUNCTION`/`CURLOPT_OPENSOCKETDATA`
 * and `CURLOPT_CLOSESOCKETFUNCTION`/`CURLOPT_CLOSESOCKETDATA` while it runs
 * (so that a pooled connection's socket stays watched between transfers and
 * reusing it costs no `epoll_ctl`; a caller's own values for these four are
 * replaced), resetting them to libcurl's defaults before `done` runs. Until
 * `done` ran, the caller must not free it, reconfigure it, add it to another
 * multi, or call `curl_easy_perform` on it.
 *
 * - `multi`: an open multi of this thread.
 * - `easy`: a configured easy handle from `curl_easy_init` (of the libcurl
 *   linked into uvcurl). Its own callbacks (`CURLOPT_WRITEFUNCTION`, ...) run
 *   on the loop thread and may call `uvcurl_multi_add`, `uvcurl_multi_cancel`
 *   and `uvcurl_multi_close`: what they ask for is done as soon as libcurl
 *   returns.
 * - `done`: the completion callback; required.
 * - `userdata`: passed to `done` untouched.
 *
 * May be called from any uvcurl or libcurl callback on the loop thread,
 * including `done` callbacks (to start the next transfer, or to add `easy`
 * again). Completion callbacks of other, already finished transfers may run
 * before this returns.
 *
 * Returns `UVCURL_OK` (and `done` will be called), or, without calling
 * `done`: `UVCURL_EINVAL` if `multi`, `easy` or `done` is NULL,
 * `UVCURL_ECLOSED`, `UVCURL_EWRONGTHREAD`, `UVCURL_EEXIST` if `easy` is
 * already running in this multi (the running transfer goes on and `easy`
 * stays in use until its own `done`: do not free it), `UVCURL_ECURLM` if
 * libcurl refuses it (for example because it is in another multi handle),
 * `UVCURL_EPANIC`.
 *
 * # Safety
 * `easy` must be a valid easy handle, kept valid as described above.
 */
int uvcurl_multi_add(uvcurl_multi *multi, CURL *easy, uvcurl_done_cb done, void *userdata);

/**
 * Like `uvcurl_multi_add`, but callable from **any thread**: the easy handle
 * is handed to the loop thread (through a `uv_async_t`) and added there.
 *
 * `done` then runs exactly once, on the loop thread: with the transfer's
 * result as for `uvcurl_multi_add`, or with the error that kept the handle
 * from being added there (`UVCURL_ECURLM`, ...; `UVCURL_EEXIST` if `easy`
 * was still running from an earlier add or submit -- then it is not the
 * caller's to free until that transfer's own `done`), or with
 * `UVCURL_ECLOSED` if the multi was closed before the loop got to it.
 *
 * The loop must be running (`uv_run`) for submissions to be picked up; the
 * async handle behind this does not keep the loop alive by itself.
 *
 * Returns `UVCURL_OK` (and `done` will be called), or, without calling
 * `done`: `UVCURL_EINVAL` if `multi`, `easy` or `done` is NULL,
 * `UVCURL_ECLOSED` if `uvcurl_multi_close` was called on the multi (even
 * from inside a callback still running on the loop thread) or it is
 * released, `UVCURL_EPANIC`.
 *
 * # Safety
 * `easy` must be a valid easy handle, kept valid and untouched until `done`
 * ran; `userdata` is passed to `done` on the loop thread.
 */
int uvcurl_multi_submit(uvcurl_multi *multi, CURL *easy, uvcurl_done_cb done, void *userdata);

/**
 * Cancels the transfer running on `easy`: libcurl stops it and its `done`
 * callback runs once, with `UVCURL_ECANCELED` -- before this function returns,
 * or, when called from inside a libcurl callback (such as the easy handle's
 * own `CURLOPT_WRITEFUNCTION`), right after libcurl returned. Cancelling a
 * transfer whose cancellation is already under way does nothing more and
 * returns `UVCURL_OK`.
 *
 * May be called from any uvcurl or libcurl callback on the loop thread.
 *
 * Returns `UVCURL_OK`, `UVCURL_EINVAL` if `multi` or `easy` is NULL,
 * `UVCURL_ECLOSED`, `UVCURL_EWRONGTHREAD`, `UVCURL_ENOTFOUND` if `easy` is
 * not running in `multi` (never added, or its `done` already ran),
 * `UVCURL_EPANIC`.
 */
int uvcurl_multi_cancel(uvcurl_multi *multi, CURL *easy);

/**
 * How many transfers of `multi` are running: added, and their `done`
 * callback not run yet (inside a `done` callback, its own transfer is no
 * longer counted). Submissions from other threads that the loop has not
 * picked up yet are not counted. Returns that number (>= 0), or `UVCURL_EINVAL`,
 * `UVCURL_ECLOSED`, `UVCURL_EWRONGTHREAD`, `UVCURL_EPANIC`.
 */
int uvcurl_multi_active(const uvcurl_multi *multi);

/**
 * Closes `multi`, asynchronously. Every running transfer is cancelled: each
 * `done` callback runs once with `UVCURL_ECANCELED`, before this function
 * returns (or, called from inside a libcurl callback, right after libcurl
 * returned). Then the libcurl multi handle is cleaned up and uvcurl's libuv
 * handles are closed; when libuv has run their close callbacks (during a
 * later iteration of the host's `uv_run`), `multi` is freed and `closed` runs.
 *
 * From this call on, every call with `multi` returns `UVCURL_ECLOSED` (a
 * second `uvcurl_multi_close` too, and its `closed` is never called);
 * `uvcurl_multi_curlm` returns NULL. Keep running the loop until `closed` ran.
 *
 * - `closed`: may be NULL.
 * - `userdata`: passed to `closed` untouched.
 *
 * May be called from any uvcurl or libcurl callback on the loop thread,
 * including a `done` callback of this multi.
 *
 * Returns `UVCURL_OK` (and `closed`, if given, will be called),
 * `UVCURL_EINVAL` if `multi` is NULL, `UVCURL_ECLOSED`,
 * `UVCURL_EWRONGTHREAD`, `UVCURL_EPANIC`.
 */
int uvcurl_multi_close(uvcurl_multi *multi, uvcurl_closed_cb closed, void *userdata);

/**
 * A static, NUL-terminated English description of `code`: a `UVCURL_*` code
 * (for `CURLcode` values use `curl_easy_strerror`). Never NULL; unknown codes
 * get a generic text. Any thread.
 */
const char *uvcurl_strerror(int code);

/**
 * uvcurl's version, a static NUL-terminated string such as "0.1.0". The
 * version of the libcurl inside it is `curl_version()`; that of the libuv
 * it calls is `uvcurl_libuv_version()`. Any thread.
 */
const char *uvcurl_version(void);

/**
 * The version of the libuv that uvcurl's own calls reach, as `uv_version()`
 * encodes it (`major << 16 | minor << 8 | patch`), called from inside uvcurl.
 * With the system-libuv build this is the host's libuv (Node's, luv's, the
 * program's `-luv`); a host can compare it with its own `uv_version()` to
 * check that the process runs one libuv. `uvcurl_multi_new` refuses
 * versions below 1.44.0 (0x012c00). Any thread.
 */
unsigned int uvcurl_libuv_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* UVCURL_H */
