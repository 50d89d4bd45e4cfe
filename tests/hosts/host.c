/*
 * host.c -- a C host linked with -luv (the system libuv) and the system-libuv
 * build of libuvcurl, as the README's "Using it from C" describes:
 *
 *     cc host.c $(pkg-config --cflags --libs uvcurl)
 *
 *     host N
 *     host version-check     (under LD_PRELOAD=old_libuv.so: expects UVCURL_EUVVERSION)
 *
 * On one loop: its own HTTP server on a uv_tcp_t (127.0.0.1, keep-alive,
 * GET /<i> answers body_of(i)), a uv_timer_t ticking every 2 ms, and N uvcurl
 * transfers to that server, at most 50 at a time, each body compared byte for
 * byte. Then checks that the process runs one libuv: the host's uv_version()
 * equals uvcurl_libuv_version(), /proc/self/maps holds one libuv file, and
 * uv_poll_start as the dynamic linker resolves it for libuvcurl (or, linked
 * with libuvcurl.a, for the program) lives in that file. Prints "ok ..." and exits 0 only if all of that holds.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>
#include <uvcurl.h>

#define IN_FLIGHT 50

static size_t body_len(unsigned i) { return (i * 7919u) % 20000u + 1u; }
static unsigned char body_byte(unsigned i, size_t k) { return (unsigned char)('a' + (i + k * 13u) % 26u); }

struct app {
    uv_loop_t loop;
    uv_timer_t ticker;
    uv_tcp_t server;
    uvcurl_multi *multi;
    int port;
    unsigned total, next, ok, failed;
    unsigned long ticks;
    int closed;
};

/* ---- the host's own HTTP server ------------------------------------------ */

struct conn {
    uv_tcp_t tcp;
    char buf[4096];
    size_t used;
};

struct reply {
    uv_write_t req;
    uv_buf_t buf;
};

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct conn *c = h->data;
    (void)suggested;
    buf->base = c->buf + c->used;
    buf->len = sizeof c->buf - c->used;
}

static void reply_written(uv_write_t *req, int status) {
    (void)status;
    struct reply *r = (struct reply *)req;
    free(r->buf.base);
    free(r);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    struct conn *c = s->data;
    (void)buf;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    c->used += (size_t)n;
    for (;;) {
        char *end = memmem(c->buf, c->used, "\r\n\r\n", 4);
        if (!end) break;
        unsigned i = 0;
        sscanf(c->buf, "GET /%u", &i);
        size_t len = body_len(i);
        char head[128];
        int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        struct reply *r = malloc(sizeof *r);
        r->buf.base = malloc((size_t)hl + len);
        r->buf.len = (size_t)hl + len;
        memcpy(r->buf.base, head, (size_t)hl);
        for (size_t k = 0; k < len; k++) r->buf.base[hl + k] = (char)body_byte(i, k);
        uv_write(&r->req, s, &r->buf, 1, reply_written);
        size_t consumed = (size_t)(end + 4 - c->buf);
        memmove(c->buf, c->buf + consumed, c->used - consumed);
        c->used -= consumed;
    }
    if (c->used == sizeof c->buf) uv_close((uv_handle_t *)s, conn_closed);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    struct conn *c = calloc(1, sizeof *c);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
    else
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* ---- uvcurl transfers ----------------------------------------------------- */

struct job {
    struct app *app;
    unsigned index;
    unsigned char *data;
    size_t len, cap;
};

static size_t on_write(char *ptr, size_t size, size_t n, void *userdata) {
    struct job *job = userdata;
    size_t bytes = size * n;
    if (job->len + bytes > job->cap) {
        job->cap = (job->len + bytes) * 2;
        job->data = realloc(job->data, job->cap);
    }
    memcpy(job->data + job->len, ptr, bytes);
    job->len += bytes;
    return bytes;
}

static void start_next(struct app *app);

static void on_closed(void *userdata) {
    struct app *app = userdata;
    app->closed = 1;
    uv_close((uv_handle_t *)&app->server, NULL);
    uv_close((uv_handle_t *)&app->ticker, NULL);
}

static void on_done(uvcurl_multi *multi, CURL *easy, int result, void *userdata) {
    struct job *job = userdata;
    struct app *app = job->app;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    int good = result == 0 && status == 200 && job->len == body_len(job->index);
    for (size_t k = 0; good && k < job->len; k++)
        if (job->data[k] != body_byte(job->index, k)) good = 0;
    if (good)
        app->ok++;
    else {
        app->failed++;
        fprintf(stderr, "transfer %u failed: result %d status %ld len %zu\n", job->index, result, status, job->len);
    }
    curl_easy_cleanup(easy);
    free(job->data);
    free(job);
    start_next(app);
    if (app->ok + app->failed == app->total && uvcurl_multi_active(multi) == 0)
        uvcurl_multi_close(multi, on_closed, app);
}

static void start_next(struct app *app) {
    if (app->next >= app->total) return;
    struct job *job = calloc(1, sizeof *job);
    job->app = app;
    job->index = app->next++;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%u", app->port, job->index);
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 20000L);
    int rc = uvcurl_multi_add(app->multi, easy, on_done, job);
    if (rc != UVCURL_OK) {
        fprintf(stderr, "uvcurl_multi_add: %s\n", uvcurl_strerror(rc));
        exit(1);
    }
}

static void on_tick(uv_timer_t *t) {
    struct app *app = t->data;
    app->ticks++;
}

/* ---- one libuv in the process --------------------------------------------- */

static int libuv_files_mapped(char *first, size_t first_len) {
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[1024], seen[8][512];
    int count = 0;
    while (maps && fgets(line, sizeof line, maps)) {
        char *path = strchr(line, '/');
        if (!path) continue;
        path[strcspn(path, "\n")] = 0;
        const char *base = strrchr(path, '/') + 1;
        if (strncmp(base, "libuv.so", 8) != 0) continue;
        int dup = 0;
        for (int k = 0; k < count; k++) dup |= strcmp(seen[k], path) == 0;
        if (!dup && count < 8) snprintf(seen[count++], sizeof seen[0], "%s", path);
    }
    if (maps) fclose(maps);
    if (count > 0) snprintf(first, first_len, "%s", seen[0]);
    return count;
}

int main(int argc, char **argv) {
    static struct app app;
    if (argc > 1 && strcmp(argv[1], "version-check") == 0) {
        /* Run with a libuv that reports an old version (tests/hosts/old_libuv.c). */
        uv_loop_t loop;
        uvcurl_multi *multi = NULL;
        uv_loop_init(&loop);
        int rc = uvcurl_multi_new(&loop, &multi);
        printf("uv_version %x multi_new %d (%s) multi %s\n", uv_version(), rc, uvcurl_strerror(rc),
               multi ? "set" : "NULL");
        uv_loop_close(&loop);
        return rc == UVCURL_EUVVERSION && multi == NULL ? 0 : 1;
    }
    app.total = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;

    uvcurl_multi *bad = NULL;
    if (uvcurl_multi_new(NULL, &bad) != UVCURL_EINVAL || bad != NULL) {
        fprintf(stderr, "NULL loop not refused with UVCURL_EINVAL\n");
        return 1;
    }

    if (uv_loop_init(&app.loop) != 0) return 1;
    uv_timer_init(&app.loop, &app.ticker);
    app.ticker.data = &app;
    uv_timer_start(&app.ticker, on_tick, 2, 2);

    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&app.loop, &app.server);
    if (uv_tcp_bind(&app.server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&app.server, 128, on_connection) != 0) {
        fprintf(stderr, "cannot listen\n");
        return 1;
    }
    struct sockaddr_storage bound;
    int namelen = sizeof bound;
    uv_tcp_getsockname(&app.server, (struct sockaddr *)&bound, &namelen);
    app.port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    int rc = uvcurl_multi_new(&app.loop, &app.multi);
    if (rc != UVCURL_OK) {
        fprintf(stderr, "uvcurl_multi_new: %s\n", uvcurl_strerror(rc));
        return 1;
    }
    for (int k = 0; k < IN_FLIGHT; k++) start_next(&app);
    if (app.total == 0) uvcurl_multi_close(app.multi, on_closed, &app);
    uv_run(&app.loop, UV_RUN_DEFAULT);
    int loop_closed = uv_loop_close(&app.loop);

    /* One libuv: the version the host sees is the one uvcurl calls, and one
     * libuv file is mapped, in which libuvcurl's uv_poll_start resolves. */
    unsigned host_uv = uv_version(), uvcurl_uv = uvcurl_libuv_version();
    char mapped[512] = "";
    int files = libuv_files_mapped(mapped, sizeof mapped);
    Dl_info info = {0};
    void *lib = dlopen("libuvcurl.so.0", RTLD_LAZY | RTLD_NOLOAD);
    /* Linked with libuvcurl.a there is no libuvcurl.so: look globally. */
    void *poll_start = dlsym(lib ? lib : RTLD_DEFAULT, "uv_poll_start");
    int resolved = poll_start && dladdr(poll_start, &info) && info.dli_fname &&
                   strstr(info.dli_fname, "/libuv.so") != NULL;
    printf("transfers %u ok %u failed %u ticks %lu loop_close %d host_uv %x uvcurl_uv %x "
           "libuv_files %d (%s) uv_poll_start_in %s\n",
           app.total, app.ok, app.failed, app.ticks, loop_closed, host_uv, uvcurl_uv, files,
           mapped, info.dli_fname ? info.dli_fname : "?");
    if (lib) dlclose(lib);
    int pass = app.ok == app.total && app.failed == 0 && app.closed && loop_closed == 0 &&
               app.ticks > 0 && host_uv == uvcurl_uv && files == 1 && resolved;
    if (pass) printf("ok\n");
    curl_global_cleanup();
    return pass ? 0 : 1;
}
