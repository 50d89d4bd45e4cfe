/*
 * boundary.c -- the C API's edge cases, run by tests/c_api.rs (also under
 * valgrind). Every check prints "ok <name>" or "FAIL <name> ...".
 *
 *     boundary FAST_URL SLOW_URL DRIP_URL
 *
 * FAST_URL answers at once, SLOW_URL not before the test is over, DRIP_URL
 * sends its body in pieces. Exits 0 if every check passed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>
#include <uvcurl.h>

static int failures;

#define CHECK(name, cond)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            printf("ok %s\n", name);                                          \
        } else {                                                              \
            printf("FAIL %s (line %d)\n", name, __LINE__);                    \
            failures++;                                                       \
        }                                                                     \
    } while (0)

#define CHECK_RC(name, call, expected)                                        \
    do {                                                                      \
        int rc_ = (call);                                                     \
        if (rc_ == (expected)) {                                              \
            printf("ok %s\n", name);                                          \
        } else {                                                              \
            printf("FAIL %s: got %d (%s), want %d (line %d)\n", name, rc_,    \
                   uvcurl_strerror(rc_), (int)(expected), __LINE__);          \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static const char *fast_url, *slow_url, *drip_url;

/* Counts every callback: each easy handle's must fire exactly once. */
struct record {
    int calls;
    int result;
};

static void record_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    (void)multi;
    (void)easy;
    struct record *r = userdata;
    r->calls++;
    r->result = result;
}

static void count_closed(void *userdata) { (*(int *)userdata)++; }

static size_t discard(char *data, size_t size, size_t n, void *userdata) {
    (void)data;
    (void)userdata;
    return size * n;
}

static CURL *easy_for(const char *url) {
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 60L);
    return easy;
}

/* ---- calls from another thread ------------------------------------------- */

struct thread_args {
    uvcurl_multi *multi;
    CURL *easy;
    int add, cancel, active, close;
    CURLM *curlm;
};

static void *other_thread(void *p) {
    struct thread_args *a = p;
    static struct record unused;
    a->add = uvcurl_multi_add(a->multi, a->easy, record_done, &unused);
    a->cancel = uvcurl_multi_cancel(a->multi, a->easy);
    a->active = uvcurl_multi_active(a->multi);
    a->curlm = uvcurl_multi_curlm(a->multi);
    a->close = uvcurl_multi_close(a->multi, NULL, NULL);
    return NULL;
}

/* ---- a chain driven from callbacks --------------------------------------- */

struct chain {
    CURL *first, *slow;
    int first_calls, again_calls, closed;
    int first_result, again_result, add_after_close;
    struct record slow_record;
};

static void chain_again_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    struct chain *c = userdata;
    c->again_calls++;
    c->again_result = result;
    (void)easy;
    /* Close from a completion: the slow transfer is cancelled right here. */
    uvcurl_multi_close(multi, count_closed, &c->closed);
    c->add_after_close = uvcurl_multi_add(multi, c->first, record_done, NULL);
}

static void chain_first_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    struct chain *c = userdata;
    c->first_calls++;
    c->first_result = result;
    /* The easy handle is ours again: add it once more, from its own callback. */
    int rc = uvcurl_multi_add(multi, easy, chain_again_done, c);
    if (rc != UVCURL_OK) {
        printf("FAIL re-add from callback: %s\n", uvcurl_strerror(rc));
        failures++;
    }
}

/* ---- close from inside libcurl's write callback -------------------------- */

struct inside {
    uvcurl_multi *multi;
    int close_rc, writes, closed;
    struct record record;
};

static size_t close_on_first_write(char *data, size_t size, size_t n, void *userdata) {
    (void)data;
    struct inside *in = userdata;
    if (in->writes++ == 0) {
        in->close_rc = uvcurl_multi_close(in->multi, count_closed, &in->closed);
    }
    return size * n;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: boundary FAST_URL SLOW_URL DRIP_URL\n");
        return 2;
    }
    fast_url = argv[1];
    slow_url = argv[2];
    drip_url = argv[3];

    /* Codes and strings. */
    CHECK("version", uvcurl_version() != NULL && strlen(uvcurl_version()) > 0);
    const char *unknown = uvcurl_strerror(12345);
    int codes[] = {UVCURL_OK,          UVCURL_EINVAL,    UVCURL_ECLOSED, UVCURL_EEXIST,
                   UVCURL_ENOTFOUND,   UVCURL_EWRONGTHREAD, UVCURL_ECANCELED,
                   UVCURL_ECURLM,      UVCURL_EUV,       UVCURL_ENOMEM,  UVCURL_EPANIC};
    int distinct = unknown != NULL;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *text = uvcurl_strerror(codes[i]);
        distinct = distinct && text != NULL && strcmp(text, unknown) != 0 && (i == 0 || codes[i] < 0);
    }
    CHECK("strerror", distinct);

    uv_loop_t loop;
    uv_loop_init(&loop);

    /* Null pointers everywhere. */
    uvcurl_multi *multi = (uvcurl_multi *)0x1;
    CHECK_RC("new null loop", uvcurl_multi_new(NULL, &multi), UVCURL_EINVAL);
    CHECK("new null loop leaves out alone", multi == (uvcurl_multi *)0x1);
    CHECK_RC("new null out", uvcurl_multi_new(&loop, NULL), UVCURL_EINVAL);
    CHECK_RC("add null multi", uvcurl_multi_add(NULL, NULL, record_done, NULL), UVCURL_EINVAL);
    CHECK_RC("cancel null multi", uvcurl_multi_cancel(NULL, NULL), UVCURL_EINVAL);
    CHECK_RC("close null multi", uvcurl_multi_close(NULL, NULL, NULL), UVCURL_EINVAL);
    CHECK_RC("active null multi", uvcurl_multi_active(NULL), UVCURL_EINVAL);
    CHECK("curlm null multi", uvcurl_multi_curlm(NULL) == NULL);
    CHECK_RC("bogus pointer", uvcurl_multi_active((uvcurl_multi *)0x12345678), UVCURL_ECLOSED);

    CHECK_RC("new", uvcurl_multi_new(&loop, &multi), UVCURL_OK);
    CURLM *curlm = uvcurl_multi_curlm(multi);
    CHECK("curlm", curlm != NULL);
    CHECK("curl_multi_setopt on curlm",
          curl_multi_setopt(curlm, CURLMOPT_MAX_TOTAL_CONNECTIONS, 8L) == CURLM_OK);

    CURL *easy = easy_for(slow_url);
    CURL *other = easy_for(fast_url);
    struct record rec = {0};
    CHECK_RC("add null easy", uvcurl_multi_add(multi, NULL, record_done, &rec), UVCURL_EINVAL);
    CHECK_RC("add null callback", uvcurl_multi_add(multi, easy, NULL, &rec), UVCURL_EINVAL);
    CHECK_RC("add", uvcurl_multi_add(multi, easy, record_done, &rec), UVCURL_OK);
    CHECK_RC("add twice", uvcurl_multi_add(multi, easy, record_done, &rec), UVCURL_EEXIST);
    CHECK_RC("active", uvcurl_multi_active(multi), 1);
    CHECK_RC("cancel null easy", uvcurl_multi_cancel(multi, NULL), UVCURL_EINVAL);
    CHECK_RC("cancel not added", uvcurl_multi_cancel(multi, other), UVCURL_ENOTFOUND);

    /* Another thread: refused before anything is touched. */
    struct thread_args args = {multi, other, 0, 0, 0, 0, (CURLM *)0x1};
    pthread_t thread;
    pthread_create(&thread, NULL, other_thread, &args);
    pthread_join(thread, NULL);
    CHECK_RC("add from another thread", args.add, UVCURL_EWRONGTHREAD);
    CHECK_RC("cancel from another thread", args.cancel, UVCURL_EWRONGTHREAD);
    CHECK_RC("active from another thread", args.active, UVCURL_EWRONGTHREAD);
    CHECK_RC("close from another thread", args.close, UVCURL_EWRONGTHREAD);
    CHECK("curlm from another thread", args.curlm == NULL);

    /* The same easy handle in two multis: libcurl refuses. */
    uvcurl_multi *second = NULL;
    CHECK_RC("second multi", uvcurl_multi_new(&loop, &second), UVCURL_OK);
    CHECK_RC("easy in two multis", uvcurl_multi_add(second, easy, record_done, &rec), UVCURL_ECURLM);
    int second_closed = 0;
    CHECK_RC("close second (no transfers)", uvcurl_multi_close(second, count_closed, &second_closed), UVCURL_OK);

    /* Cancel: the callback fires once, before cancel returns. */
    CHECK_RC("cancel", uvcurl_multi_cancel(multi, easy), UVCURL_OK);
    CHECK("cancel fired the callback", rec.calls == 1 && rec.result == UVCURL_ECANCELED);
    CHECK_RC("cancel again", uvcurl_multi_cancel(multi, easy), UVCURL_ENOTFOUND);
    CHECK_RC("active after cancel", uvcurl_multi_active(multi), 0);

    /* From callbacks: re-add the same easy handle, then close from a completion
     * while a slow transfer runs (it is cancelled by the close). */
    struct chain chain = {0};
    chain.first = other;
    chain.slow = easy;
    CHECK_RC("add slow", uvcurl_multi_add(multi, easy, record_done, &chain.slow_record), UVCURL_OK);
    CHECK_RC("add first", uvcurl_multi_add(multi, other, chain_first_done, &chain), UVCURL_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK("first completion once, OK", chain.first_calls == 1 && chain.first_result == CURLE_OK);
    CHECK("re-added completion once, OK", chain.again_calls == 1 && chain.again_result == CURLE_OK);
    CHECK("slow cancelled by close, once",
          chain.slow_record.calls == 1 && chain.slow_record.result == UVCURL_ECANCELED);
    CHECK_RC("add inside callback after close", chain.add_after_close, UVCURL_ECLOSED);
    CHECK("closed callback once", chain.closed == 1);
    CHECK("second multi closed once", second_closed == 1);

    /* Use after close and release: errors, not crashes. */
    CHECK_RC("add after release", uvcurl_multi_add(multi, easy, record_done, &rec), UVCURL_ECLOSED);
    CHECK_RC("cancel after release", uvcurl_multi_cancel(multi, easy), UVCURL_ECLOSED);
    CHECK_RC("active after release", uvcurl_multi_active(multi), UVCURL_ECLOSED);
    CHECK_RC("double close", uvcurl_multi_close(multi, count_closed, &chain.closed), UVCURL_ECLOSED);
    CHECK("curlm after release", uvcurl_multi_curlm(multi) == NULL);
    CHECK("no callback after release", chain.closed == 1 && rec.calls == 1);

    /* Close between close and release. */
    uvcurl_multi *third = NULL;
    int third_closed = 0;
    CHECK_RC("third multi", uvcurl_multi_new(&loop, &third), UVCURL_OK);
    CHECK_RC("close third", uvcurl_multi_close(third, count_closed, &third_closed), UVCURL_OK);
    CHECK_RC("close while closing", uvcurl_multi_close(third, count_closed, &third_closed), UVCURL_ECLOSED);
    CHECK_RC("add while closing", uvcurl_multi_add(third, easy, record_done, &rec), UVCURL_ECLOSED);
    CHECK("curlm while closing", uvcurl_multi_curlm(third) == NULL);
    CHECK("closed callback not yet", third_closed == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK("closed callback after uv_run", third_closed == 1);

    /* Close from inside libcurl's write callback: done right after libcurl returns. */
    struct inside in = {0};
    CHECK_RC("inside multi", uvcurl_multi_new(&loop, &in.multi), UVCURL_OK);
    CURL *drip = easy_for(drip_url);
    curl_easy_setopt(drip, CURLOPT_WRITEFUNCTION, close_on_first_write);
    curl_easy_setopt(drip, CURLOPT_WRITEDATA, &in);
    CHECK_RC("add drip", uvcurl_multi_add(in.multi, drip, record_done, &in.record), UVCURL_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_RC("close inside write callback", in.close_rc, UVCURL_OK);
    CHECK("drip cancelled once", in.record.calls == 1 && in.record.result == UVCURL_ECANCELED);
    CHECK("drip multi closed once", in.closed == 1);

    curl_easy_cleanup(drip);
    curl_easy_cleanup(easy);
    curl_easy_cleanup(other);
    CHECK_RC("loop closes with nothing left", uv_loop_close(&loop), 0);
    printf("%s\n", failures == 0 ? "all passed" : "some failed");
    return failures == 0 ? 0 : 1;
}
