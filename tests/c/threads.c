/*
 * threads.c -- submitting transfers from worker threads (uvcurl_multi_submit).
 *
 *     threads THREADS PER_THREAD URL
 *
 * The main thread runs the loop; THREADS pthreads each submit PER_THREAD
 * easy handles for URL. Every done callback runs on the loop thread (checked)
 * and records its result and body length; when all are in, the multi is closed.
 * Prints "done <CURLcode> <bytes>" per transfer, then "completed N",
 * "wrong-thread 0", "closed"; exits 0 on success.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>
#include <uvcurl.h>

struct app {
    uvcurl_multi *multi;
    const char *url;
    int per_thread;
    pthread_t loop_thread;
    int completed, expected, wrong_thread, failed, closed;
    uv_timer_t check;
};

struct job {
    struct app *app;
    size_t bytes;
};

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
    (void)data;
    ((struct job *)userdata)->bytes += size * n;
    return size * n;
}

static void on_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    (void)multi;
    struct job *job = userdata;
    struct app *app = job->app;
    if (!pthread_equal(pthread_self(), app->loop_thread)) {
        app->wrong_thread++;
    }
    printf("done %d %zu\n", result, job->bytes);
    if (result != CURLE_OK) {
        app->failed++;
    }
    curl_easy_cleanup(easy);
    free(job);
    app->completed++;
}

static void *submitter(void *arg) {
    struct app *app = arg;
    for (int i = 0; i < app->per_thread; i++) {
        struct job *job = calloc(1, sizeof *job);
        CURL *easy = curl_easy_init();
        if (job == NULL || easy == NULL) {
            abort();
        }
        job->app = app;
        curl_easy_setopt(easy, CURLOPT_URL, app->url);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT, 60L);
        int rc = uvcurl_multi_submit(app->multi, easy, on_done, job);
        if (rc != UVCURL_OK) {
            fprintf(stderr, "uvcurl_multi_submit: %s\n", uvcurl_strerror(rc));
            abort();
        }
    }
    return NULL;
}

static void on_closed(void *userdata) {
    ((struct app *)userdata)->closed = 1;
}

/* Keeps the loop alive while submissions may still come; closes at the end. */
static void on_check(uv_timer_t *timer) {
    struct app *app = timer->data;
    if (app->completed == app->expected) {
        uv_timer_stop(timer);
        uv_close((uv_handle_t *)timer, NULL);
        if (uvcurl_multi_close(app->multi, on_closed, app) != UVCURL_OK) {
            abort();
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: threads THREADS PER_THREAD URL\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    struct app app = {0};
    app.per_thread = atoi(argv[2]);
    app.url = argv[3];
    app.expected = threads * app.per_thread;
    app.loop_thread = pthread_self();

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0 || uvcurl_multi_new(&loop, &app.multi) != UVCURL_OK) {
        return 2;
    }
    uv_timer_init(&loop, &app.check);
    app.check.data = &app;
    uv_timer_start(&app.check, on_check, 10, 10);

    pthread_t workers[64];
    if (threads < 1 || threads > 64) {
        return 2;
    }
    for (int t = 0; t < threads; t++) {
        pthread_create(&workers[t], NULL, submitter, &app);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t], NULL);
    }
    /* After the close, submissions are refused with an error, never lost. */
    CURL *late = curl_easy_init();
    int late_rc = uvcurl_multi_submit(app.multi, late, on_done, NULL);
    curl_easy_cleanup(late);
    int close_rc = uv_loop_close(&loop);
    printf("completed %d\nwrong-thread %d\nlate %s\n%s\n", app.completed, app.wrong_thread,
           uvcurl_strerror(late_rc), app.closed ? "closed" : "NOT CLOSED");
    return (app.failed == 0 && app.wrong_thread == 0 && app.closed && close_rc == 0 &&
            late_rc == UVCURL_ECLOSED)
               ? 0
               : 1;
}
