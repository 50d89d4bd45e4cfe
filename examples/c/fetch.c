/*
 * fetch.c -- download URLs concurrently on the program's own libuv loop.
 *
 *     fetch [-j MAX_IN_FLIGHT] URL...
 *
 * Prints one line per finished transfer,
 *     done <index> <CURLcode> <HTTP status> <bytes> <FNV-1a 64 of the body>
 * then "completed <n>" and "closed", and exits 0 if every transfer succeeded
 * and the loop closed cleanly. At most MAX_IN_FLIGHT (default 50) transfers
 * run at once: each completion starts the next URL, and the last one closes
 * the multi from inside its callback.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>
#include <uvcurl.h>

struct app {
    uvcurl_multi *multi;
    char **urls;
    size_t count, next, in_flight, completed, failed, max_in_flight;
    int closed;
};

struct job {
    struct app *app;
    size_t index, bytes;
    uint64_t hash;
};

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
    struct job *job = userdata;
    for (size_t i = 0; i < size * n; i++) {
        job->hash = (job->hash ^ (unsigned char)data[i]) * 0x100000001b3ULL;
    }
    job->bytes += size * n;
    return size * n;
}

static void on_closed(void *userdata) {
    struct app *app = userdata;
    app->closed = 1;
    printf("closed\n");
}

static void start_more(struct app *app);

static void on_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    struct job *job = userdata;
    struct app *app = job->app;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    printf("done %zu %d %ld %zu %016llx\n", job->index, result, status, job->bytes,
           (unsigned long long)job->hash);
    if (result != CURLE_OK || status != 200) {
        app->failed++;
    }
    curl_easy_cleanup(easy); /* the easy handle is ours again */
    free(job);
    app->in_flight--;
    app->completed++;
    start_more(app);
    if (app->completed == app->count) {
        int rc = uvcurl_multi_close(multi, on_closed, app);
        if (rc != UVCURL_OK) {
            fprintf(stderr, "uvcurl_multi_close: %s\n", uvcurl_strerror(rc));
            exit(2);
        }
    }
}

static void start_more(struct app *app) {
    while (app->next < app->count && app->in_flight < app->max_in_flight) {
        struct job *job = calloc(1, sizeof *job);
        CURL *easy = curl_easy_init();
        if (job == NULL || easy == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        job->app = app;
        job->index = app->next;
        job->hash = 0xcbf29ce484222325ULL;
        curl_easy_setopt(easy, CURLOPT_URL, app->urls[app->next]);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT, 60L);
        int rc = uvcurl_multi_add(app->multi, easy, on_done, job);
        if (rc != UVCURL_OK) {
            fprintf(stderr, "uvcurl_multi_add: %s\n", uvcurl_strerror(rc));
            exit(2);
        }
        app->next++;
        app->in_flight++;
    }
}

int main(int argc, char **argv) {
    struct app app = {0};
    app.max_in_flight = 50;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-j") == 0) {
        app.max_in_flight = (size_t)strtoul(argv[2], NULL, 10);
        first = 3;
    }
    if (app.max_in_flight == 0) {
        fprintf(stderr, "usage: fetch [-j MAX_IN_FLIGHT] URL...\n");
        return 2;
    }
    app.urls = argv + first;
    app.count = (size_t)(argc - first);

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        return 2;
    }
    int rc = uvcurl_multi_new(&loop, &app.multi);
    if (rc != UVCURL_OK) {
        fprintf(stderr, "uvcurl_multi_new: %s\n", uvcurl_strerror(rc));
        return 2;
    }
    if (app.count == 0) {
        uvcurl_multi_close(app.multi, on_closed, &app);
    }
    start_more(&app);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the multi is closed and released */
    printf("completed %zu\n", app.completed);
    rc = uv_loop_close(&loop);
    if (rc != 0) {
        fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(rc));
        return 1;
    }
    return (app.failed == 0 && app.closed && app.completed == app.count) ? 0 : 1;
}
