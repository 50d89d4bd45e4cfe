/*
 * regressions.c -- C ABI defects found by a new C user, one case each.
 *
 *     regressions SLOW_URL DRIP_URL
 *
 * SLOW_URL answers after a delay; DRIP_URL sends its body in several pieces.
 *
 * 1. submit after close inside a write callback: a write callback closes the
 *    multi, then calls uvcurl_multi_submit with another easy handle. The
 *    submit must return UVCURL_ECLOSED at once and its done never run.
 *    Prints "submit-after-close <rc> done-calls <n> first <result>".
 * 2. EEXIST: an easy handle still running is added again (uvcurl_multi_add:
 *    UVCURL_EEXIST, no done) and submitted again (uvcurl_multi_submit: OK,
 *    then done with UVCURL_EEXIST while the first transfer still runs). The
 *    easy is freed only in the first transfer's own done, which gets
 *    CURLE_OK. Prints "eexist add <rc> refused-done <result> active <n>
 *    first <result> active-in-done <n>".
 * 3. cancel inside its own write callback, returning the byte count: the
 *    done gets UVCURL_ECANCELED. Prints "cancel-in-write <result>".
 *
 * Everything allocated is freed, so valgrind can check it; exits 0 if every
 * case behaved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>
#include <uvcurl.h>

static uv_loop_t loop;
static int failures;

static void expect(int ok, const char *what) {
    if (!ok) {
        failures++;
        fprintf(stderr, "FAILED: %s\n", what);
    }
}

static size_t ignore_body(char *p, size_t s, size_t n, void *u) {
    (void)p;
    (void)u;
    return s * n;
}

static CURL *easy_for(const char *url, curl_write_callback write, void *data) {
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, data);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 20000L);
    return easy;
}

static void closed_noop(void *userdata) { *(int *)userdata = 1; }

/* ---- 1. submit after close inside a write callback ----------------------- */

struct case1 {
    uvcurl_multi *multi;
    CURL *second;
    int submit_rc, done2_calls, first_result, closed, tried;
};

static void case1_done2(uvcurl_multi *m, CURL *easy, int result, void *userdata) {
    (void)m;
    (void)easy;
    (void)result;
    ((struct case1 *)userdata)->done2_calls++;
}

static size_t case1_write(char *p, size_t s, size_t n, void *userdata) {
    (void)p;
    struct case1 *c = userdata;
    if (!c->tried) {
        c->tried = 1;
        uvcurl_multi_close(c->multi, closed_noop, &c->closed);
        c->submit_rc = uvcurl_multi_submit(c->multi, c->second, case1_done2, c);
    }
    return s * n;
}

static void case1_done(uvcurl_multi *m, CURL *easy, int result, void *userdata) {
    (void)m;
    ((struct case1 *)userdata)->first_result = result;
    curl_easy_cleanup(easy);
}

static void run_case1(const char *url) {
    static struct case1 c;
    c.first_result = 12345;
    expect(uvcurl_multi_new(&loop, &c.multi) == UVCURL_OK, "case1 multi_new");
    c.second = easy_for(url, ignore_body, NULL);
    CURL *first = easy_for(url, case1_write, &c);
    expect(uvcurl_multi_add(c.multi, first, case1_done, &c) == UVCURL_OK, "case1 add");
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("submit-after-close %d done-calls %d first %d closed %d\n", c.submit_rc, c.done2_calls,
           c.first_result, c.closed);
    expect(c.submit_rc == UVCURL_ECLOSED, "case1: submit after close returns UVCURL_ECLOSED");
    expect(c.done2_calls == 0, "case1: the refused submission's done never runs");
    expect(c.first_result == UVCURL_ECANCELED, "case1: the closing transfer is cancelled");
    expect(c.closed, "case1: closed callback ran");
    /* Refused at once: the second easy handle is the caller's. */
    curl_easy_cleanup(c.second);
}

/* ---- 2. EEXIST ------------------------------------------------------------ */

struct case2 {
    uvcurl_multi *multi;
    int add_rc, refused_result, active_at_refusal, first_result, active_in_done, closed;
};

static void case2_refused(uvcurl_multi *m, CURL *easy, int result, void *userdata) {
    struct case2 *c = userdata;
    (void)easy; /* still running from the first add: NOT ours to free */
    c->refused_result = result;
    c->active_at_refusal = uvcurl_multi_active(m);
}

static void case2_done(uvcurl_multi *m, CURL *easy, int result, void *userdata) {
    struct case2 *c = userdata;
    c->first_result = result;
    c->active_in_done = uvcurl_multi_active(m);
    curl_easy_cleanup(easy); /* now it is ours again */
    uvcurl_multi_close(m, closed_noop, &c->closed);
}

static void run_case2(const char *slow_url) {
    static struct case2 c;
    c.refused_result = c.first_result = 12345;
    c.active_at_refusal = c.active_in_done = -100;
    expect(uvcurl_multi_new(&loop, &c.multi) == UVCURL_OK, "case2 multi_new");
    CURL *easy = easy_for(slow_url, ignore_body, NULL);
    expect(uvcurl_multi_add(c.multi, easy, case2_done, &c) == UVCURL_OK, "case2 add");
    c.add_rc = uvcurl_multi_add(c.multi, easy, case2_refused, &c);
    expect(uvcurl_multi_submit(c.multi, easy, case2_refused, &c) == UVCURL_OK, "case2 submit");
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("eexist add %d refused-done %d active %d first %d active-in-done %d\n", c.add_rc,
           c.refused_result, c.active_at_refusal, c.first_result, c.active_in_done);
    expect(c.add_rc == UVCURL_EEXIST, "case2: add of a running easy returns UVCURL_EEXIST");
    expect(c.refused_result == UVCURL_EEXIST, "case2: refused submit's done gets UVCURL_EEXIST");
    expect(c.active_at_refusal == 1, "case2: the first transfer still runs at the refusal");
    expect(c.first_result == 0, "case2: the first transfer completes normally");
    expect(c.active_in_done == 0, "case2: active inside done excludes its own transfer");
    expect(c.closed, "case2: closed callback ran");
}

/* ---- 3. cancel inside the write callback ---------------------------------- */

struct case3 {
    uvcurl_multi *multi;
    CURL *easy;
    int result, cancel_rc, closed;
};

static size_t case3_write(char *p, size_t s, size_t n, void *userdata) {
    (void)p;
    struct case3 *c = userdata;
    if (c->cancel_rc == 12345) c->cancel_rc = uvcurl_multi_cancel(c->multi, c->easy);
    return s * n; /* as documented: the byte count, even after cancelling */
}

static void case3_done(uvcurl_multi *m, CURL *easy, int result, void *userdata) {
    struct case3 *c = userdata;
    c->result = result;
    curl_easy_cleanup(easy);
    uvcurl_multi_close(m, closed_noop, &c->closed);
}

static void run_case3(const char *drip_url) {
    static struct case3 c;
    c.result = c.cancel_rc = 12345;
    expect(uvcurl_multi_new(&loop, &c.multi) == UVCURL_OK, "case3 multi_new");
    c.easy = easy_for(drip_url, case3_write, &c);
    expect(uvcurl_multi_add(c.multi, c.easy, case3_done, &c) == UVCURL_OK, "case3 add");
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("cancel-in-write %d cancel-rc %d\n", c.result, c.cancel_rc);
    expect(c.cancel_rc == UVCURL_OK, "case3: cancel inside the write callback");
    expect(c.result == UVCURL_ECANCELED, "case3: done gets UVCURL_ECANCELED");
    expect(c.closed, "case3: closed callback ran");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: regressions SLOW_URL DRIP_URL\n");
        return 2;
    }
    if (uv_loop_init(&loop) != 0) return 1;
    run_case1(argv[2]);
    run_case2(argv[1]);
    run_case3(argv[2]);
    expect(uv_loop_close(&loop) == 0, "uv_loop_close");
    curl_global_cleanup();
    printf(failures ? "FAILED %d\n" : "all ok\n", failures);
    return failures ? 1 : 0;
}
