/*
 * uvcurl_capi.c -- a C host of uvcurl's C ABI (include/uvcurl.h) on its own
 * uv_loop_t: the same pool of N easy handles as curl_poll.c and uv_glue.c,
 * each re-armed with only CURLOPT_URL and handed back with uvcurl_multi_add
 * from its completion callback.
 *
 * Command line and report: see common.h.
 */
#include <uv.h>
#include <uvcurl.h>

#include "common.h"

struct host {
    struct job *job;
    uvcurl_multi *multi;
    size_t next, done, active;
    uint64_t bytes;
    int closing, closed;
    char failure[512];
};

static void on_closed(void *userdata) {
    struct host *h = userdata;
    h->closed = 1;
}

static void close_multi(struct host *h) {
    if (!h->closing) {
        h->closing = 1;
        int rc = uvcurl_multi_close(h->multi, on_closed, h);
        if (rc != UVCURL_OK) {
            fprintf(stderr, "uvcurl_multi_close: %s\n", uvcurl_strerror(rc));
            exit(1);
        }
    }
}

static void on_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    struct slot *slot = userdata;
    struct host *h = slot->owner;
    h->active--;
    if (h->closing) {
        return; /* cancelled by a failure elsewhere */
    }
    if (result < 0) {
        snprintf(h->failure, sizeof h->failure, "%s: uvcurl: %s", h->job->urls[slot->index],
                 uvcurl_strerror(result));
        close_multi(h);
        return;
    }
    if (check_transfer(h->job, slot, (CURLcode)result, h->failure, sizeof h->failure) != 0) {
        close_multi(h);
        return;
    }
    h->done++;
    h->bytes += slot->bytes;
    if (h->next < h->job->count) {
        arm(h->job, slot, h->next++);
        int rc = uvcurl_multi_add(multi, easy, on_done, slot);
        if (rc != UVCURL_OK) {
            snprintf(h->failure, sizeof h->failure, "uvcurl_multi_add: %s", uvcurl_strerror(rc));
            close_multi(h);
            return;
        }
        h->active++;
    } else if (h->active == 0) {
        close_multi(h);
    }
}

int main(int argc, char **argv) {
    struct job job;
    if (parse_job(argc, argv, &job) != 0) {
        return 2;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        die("uv_loop_init failed");
    }
    struct host h;
    memset(&h, 0, sizeof h);
    h.job = &job;
    int rc = uvcurl_multi_new(&loop, &h.multi); /* runs curl_global_init */
    if (rc != UVCURL_OK) {
        fprintf(stderr, "uvcurl_multi_new: %s\n", uvcurl_strerror(rc));
        return 1;
    }
    limit_multi(uvcurl_multi_curlm(h.multi), &job);
    struct curl_slist *headers = job_headers(&job);

    size_t pool = job.inflight < job.count ? job.inflight : job.count;
    struct slot *slots = calloc(pool ? pool : 1, sizeof *slots);
    if (slots == NULL) {
        die("out of memory");
    }
    for (size_t i = 0; i < pool; i++) {
        slots[i].owner = &h;
        pooled_easy(&job, &slots[i], headers);
        arm(&job, &slots[i], h.next++);
        rc = uvcurl_multi_add(h.multi, slots[i].easy, on_done, &slots[i]);
        if (rc != UVCURL_OK) {
            fprintf(stderr, "uvcurl_multi_add: %s\n", uvcurl_strerror(rc));
            return 1;
        }
        h.active++;
    }
    if (pool == 0) {
        close_multi(&h);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int loop_rc = uv_loop_close(&loop);
    for (size_t i = 0; i < pool; i++) {
        curl_easy_cleanup(slots[i].easy);
    }
    free(slots);
    curl_slist_free_all(headers);
    if (!h.closed && !h.failure[0]) {
        snprintf(h.failure, sizeof h.failure, "uv_run returned before the multi closed");
    }
    if (loop_rc != 0 && !h.failure[0]) {
        snprintf(h.failure, sizeof h.failure, "uv_loop_close: %s", uv_strerror(loop_rc));
    }
    rc = report(h.done, h.bytes, &job, h.failure);
    free_job(&job);
    return rc;
}
