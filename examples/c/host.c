/*
 * host.c -- a program with its own libuv work, and uvcurl transfers beside it.
 *
 *     host URL...
 *
 * On one loop, this program runs
 *   - a uv_timer_t that ticks every 5 ms,
 *   - its own HTTP server on a uv_tcp_t (127.0.0.1, a free port), which
 *     answers every request with "hello from the host's own server\n",
 *   - uvcurl transfers: every URL given, and SELF_REQUESTS requests to its own
 *     server -- so uvcurl and the server must share the loop to finish at all.
 *
 * Prints "done <label> <CURLcode> <HTTP status> <bytes> <FNV-1a 64>" per
 * transfer (label: the URL's index, or "self"), then "served <n>",
 * "ticks-ok" if the timer ticked while transfers ran, "completed <n>" and
 * "closed". Exits 0 if everything succeeded and the loop closed cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>
#include <uvcurl.h>

#define SELF_REQUESTS 20

static const char REPLY[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 33\r\n"
    "Connection: close\r\n"
    "\r\n"
    "hello from the host's own server\n";

struct app {
    uv_loop_t loop;
    uv_timer_t ticker;
    uv_tcp_t server;
    uvcurl_multi *multi;
    size_t expected, completed, failed, served;
    unsigned long ticks;
    int closed;
};

/* ---- the host's own HTTP server ------------------------------------------ */

struct conn {
    uv_tcp_t tcp;
    uv_write_t write;
    struct app *app;
    char seen[4]; /* the last bytes read, to find the blank line */
    int replied;
};

static void conn_closed(uv_handle_t *handle) { free(handle->data); }

static void conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void conn_written(uv_write_t *req, int status) {
    (void)status;
    struct conn *conn = req->data;
    uv_close((uv_handle_t *)&conn->tcp, conn_closed);
}

static void conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    struct conn *conn = stream->data;
    int end = 0;
    for (ssize_t i = 0; i < nread; i++) {
        memmove(conn->seen, conn->seen + 1, 3);
        conn->seen[3] = buf->base[i];
        if (memcmp(conn->seen, "\r\n\r\n", 4) == 0) {
            end = 1;
        }
    }
    free(buf->base);
    if (nread < 0) {
        uv_close((uv_handle_t *)stream, conn_closed);
    } else if (end && !conn->replied) {
        conn->replied = 1;
        conn->app->served++;
        uv_read_stop(stream);
        uv_buf_t reply = uv_buf_init((char *)REPLY, sizeof REPLY - 1);
        conn->write.data = conn;
        uv_write(&conn->write, stream, &reply, 1, conn_written);
    }
}

static void on_connection(uv_stream_t *server, int status) {
    struct app *app = server->data;
    if (status < 0) {
        return;
    }
    struct conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        return;
    }
    conn->app = app;
    uv_tcp_init(&app->loop, &conn->tcp);
    conn->tcp.data = conn;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) == 0) {
        uv_read_start((uv_stream_t *)&conn->tcp, conn_alloc, conn_read);
    } else {
        uv_close((uv_handle_t *)&conn->tcp, conn_closed);
    }
}

/* ---- the ticker ----------------------------------------------------------- */

static void on_tick(uv_timer_t *timer) {
    struct app *app = timer->data;
    app->ticks++;
}

/* ---- uvcurl transfers ----------------------------------------------------- */

struct job {
    struct app *app;
    char label[32];
    size_t bytes;
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

static void on_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    struct job *job = userdata;
    struct app *app = job->app;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    printf("done %s %d %ld %zu %016llx\n", job->label, result, status, job->bytes,
           (unsigned long long)job->hash);
    if (result != CURLE_OK || status != 200) {
        app->failed++;
    }
    curl_easy_cleanup(easy);
    free(job);
    if (++app->completed == app->expected) {
        /* Everything fetched: stop the host's own work and uvcurl's. */
        printf("served %zu\n", app->served);
        if (app->ticks > 0) {
            printf("ticks-ok\n");
        }
        uv_close((uv_handle_t *)&app->ticker, NULL);
        uv_close((uv_handle_t *)&app->server, NULL);
        uvcurl_multi_close(multi, on_closed, app);
    }
}

static void add(struct app *app, const char *url, const char *label) {
    struct job *job = calloc(1, sizeof *job);
    CURL *easy = curl_easy_init();
    if (job == NULL || easy == NULL) {
        exit(2);
    }
    job->app = app;
    job->hash = 0xcbf29ce484222325ULL;
    snprintf(job->label, sizeof job->label, "%s", label);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 60L);
    int rc = uvcurl_multi_add(app->multi, easy, on_done, job);
    if (rc != UVCURL_OK) {
        fprintf(stderr, "uvcurl_multi_add: %s\n", uvcurl_strerror(rc));
        exit(2);
    }
}

int main(int argc, char **argv) {
    static struct app app;
    if (uv_loop_init(&app.loop) != 0) {
        return 2;
    }

    uv_timer_init(&app.loop, &app.ticker);
    app.ticker.data = &app;
    uv_timer_start(&app.ticker, on_tick, 5, 5);

    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&app.loop, &app.server);
    app.server.data = &app;
    if (uv_tcp_bind(&app.server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&app.server, 128, on_connection) != 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1\n");
        return 2;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&app.server, (struct sockaddr *)&bound, &len);
    int port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    int rc = uvcurl_multi_new(&app.loop, &app.multi);
    if (rc != UVCURL_OK) {
        fprintf(stderr, "uvcurl_multi_new: %s\n", uvcurl_strerror(rc));
        return 2;
    }
    app.expected = (size_t)(argc - 1) + SELF_REQUESTS;
    for (int i = 1; i < argc; i++) {
        char label[32];
        snprintf(label, sizeof label, "%d", i - 1);
        add(&app, argv[i], label);
    }
    for (int i = 0; i < SELF_REQUESTS; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/self/%d", port, i);
        add(&app, url, "self");
    }

    uv_run(&app.loop, UV_RUN_DEFAULT);
    printf("completed %zu\n", app.completed);
    rc = uv_loop_close(&app.loop);
    if (rc != 0) {
        fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(rc));
        return 1;
    }
    return (app.failed == 0 && app.closed && app.completed == app.expected) ? 0 : 1;
}
