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
