/*
 * curl_poll.c -- libcurl's own event loop with a pool of easy handles: the
 * baseline a C programmer gets without any event library.
 *
 * N easy handles (N = transfers in flight) get their options once; each
 * finished handle is removed, re-armed with only CURLOPT_URL and added
 * again. The loop is curl_multi_perform + curl_multi_info_read +
 * curl_multi_poll. Command line and report: see common.h.
 */
#include "common.h"

int main(int argc, char **argv) {
    struct job job;
    if (parse_job(argc, argv, &job) != 0) {
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    CURLM *multi = curl_multi_init();
    if (multi == NULL) {
        die("curl_multi_init failed");
    }
    limit_multi(multi, &job);
    struct curl_slist *headers = job_headers(&job);

    size_t pool = job.inflight < job.count ? job.inflight : job.count;
    struct slot *slots = calloc(pool ? pool : 1, sizeof *slots);
    if (slots == NULL) {
        die("out of memory");
    }
    size_t next = 0, done = 0, active = 0;
    uint64_t bytes = 0;
    char failure[512] = "";
    for (size_t i = 0; i < pool; i++) {
        pooled_easy(&job, &slots[i], headers);
        arm(&job, &slots[i], next++);
        if (curl_multi_add_handle(multi, slots[i].easy) != CURLM_OK) {
            die("curl_multi_add_handle failed");
        }
        active++;
    }

    while (active > 0 && !failure[0]) {
        int running = 0;
        CURLMcode code = curl_multi_perform(multi, &running);
        if (code != CURLM_OK) {
            snprintf(failure, sizeof failure, "curl_multi_perform: %s", curl_multi_strerror(code));
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            struct slot *slot;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&slot);
            curl_multi_remove_handle(multi, easy);
            active--;
            if (check_transfer(&job, slot, result, failure, sizeof failure) != 0) {
                break;
            }
            done++;
            bytes += slot->bytes;
            if (next < job.count) {
                arm(&job, slot, next++);
                if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
                    snprintf(failure, sizeof failure, "curl_multi_add_handle failed");
                    break;
                }
                active++;
            }
        }
        if (active == 0 || failure[0]) {
            break;
        }
        code = curl_multi_poll(multi, NULL, 0, 1000, NULL);
        if (code != CURLM_OK) {
            snprintf(failure, sizeof failure, "curl_multi_poll: %s", curl_multi_strerror(code));
        }
    }

    for (size_t i = 0; i < pool; i++) {
        curl_multi_remove_handle(multi, slots[i].easy); /* no-op unless still added */
    }
    curl_multi_cleanup(multi);
    for (size_t i = 0; i < pool; i++) {
        curl_easy_cleanup(slots[i].easy);
    }
    free(slots);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    int rc = report(done, bytes, &job, failure);
    free_job(&job);
    return rc;
}
