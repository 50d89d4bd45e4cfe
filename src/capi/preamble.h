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
 * uvcurl_strerror and uvcurl_version may be called from any thread.
 *
 * Callbacks: done and closed callbacks, and libcurl's own callbacks of an
 * added easy handle (CURLOPT_WRITEFUNCTION, ...), may call uvcurl_multi_add,
 * uvcurl_multi_cancel, uvcurl_multi_active, uvcurl_multi_curlm and
 * uvcurl_multi_close; work asked for while libcurl is running is done as
 * soon as it returns, so libcurl is never re-entered. No callback may call
 * uv_run or uv_loop_close.
 *
 * Which libcurl and libuv: uvcurl contains its own libcurl (8.22, with HTTP/2
 * and OpenSSL) and libuv (1.53). Your program must use exactly these copies:
 * uv_loop_t's layout differs between libuv versions, and easy handles of one
 * libcurl cannot be added to another libcurl's multi handle. So compile
 * against the uv.h and curl/curl.h installed with uvcurl, and link only
 * libuvcurl, never -luv or -lcurl as well: libuvcurl.so exports the public
 * uv_* and curl_* functions (and hides everything else), and libuvcurl.a
 * contains them. `pkg-config --cflags --libs uvcurl` gives the flags.
 */
