/*
 * uv_glue.c -- libcurl's multi_socket API on libuv, written the way a careful
 * C programmer would (see /work/shared/design/performance.md): the baseline
 * uvcurl's Multi is measured against.
 *
 * - CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION, one uv_timer_t.
 * - One uv_poll_t per fd, kept across CURL_POLL_REMOVE ("lazy REMOVE"): on
 *   REMOVE it stays registered; if an event arrives that libcurl no longer
 *   wants, it is stopped then. It is closed in CURLOPT_CLOSESOCKETFUNCTION,
 *   just before the fd is closed. Sockets are opened in
 *   CURLOPT_OPENSOCKETFUNCTION, so the glue knows which fds are libcurl's
 *   connections; any other fd libcurl asks to watch is closed at REMOVE.
 * - uv_poll_start only when the wanted events change.
 * - curl_multi_socket_action is never called from inside a libcurl
 *   callback (the timer callback only arms the uv timer), and completions
 *   are read with curl_multi_info_read after it returned.
 * - A pool of N easy handles, each re-armed with only CURLOPT_URL.
 *
 * Command line and report: see common.h.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "common.h"

struct glue;

/* One fd libcurl watches. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    int started; /* UV_* events the uv_poll_t is started with; 0: stopped */
    int wanted;  /* UV_* events libcurl wants; 0 after CURL_POLL_REMOVE */
    struct glue *glue;
};

struct glue {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct job *job;
    struct slot *slots;
    size_t pool;
    struct sock **socks; /* by fd */
    unsigned char *ours; /* by fd: opened by CURLOPT_OPENSOCKETFUNCTION */
    size_t nfds;
    size_t next, done, active;
    uint64_t bytes;
    int finished;
    char failure[512];
};

static void grow(struct glue *g, curl_socket_t fd) {
    if ((size_t)fd < g->nfds) {
        return;
    }
    size_t n = g->nfds ? g->nfds : 64;
    while (n <= (size_t)fd) {
        n *= 2;
    }
    g->socks = realloc(g->socks, n * sizeof *g->socks);
    g->ours = realloc(g->ours, n);
    if (g->socks == NULL || g->ours == NULL) {
        die("out of memory");
    }
    memset(g->socks + g->nfds, 0, (n - g->nfds) * sizeof *g->socks);
    memset(g->ours + g->nfds, 0, n - g->nfds);
    g->nfds = n;
}

static void free_sock(uv_handle_t *handle) {
    free(handle->data);
}

/* Closes the fd's poll handle (before the fd itself is closed). */
static void drop_sock(struct glue *g, curl_socket_t fd) {
    if ((size_t)fd >= g->nfds || g->socks[fd] == NULL) {
        return;
    }
    struct sock *s = g->socks[fd];
    g->socks[fd] = NULL;
    uv_close((uv_handle_t *)&s->poll, free_sock);
}

static void finish(struct glue *g);
static void after_action(struct glue *g);

static void on_poll(uv_poll_t *handle, int status, int events) {
    struct sock *s = handle->data;
    struct glue *g = s->glue;
    if (s->wanted == 0) {
        /* Removed by libcurl and left registered: stop it now. */
        uv_poll_stop(&s->poll);
        s->started = 0;
        return;
    }
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    int running;
    /* `s` may be closed by the time this returns. */
    curl_multi_socket_action(g->multi, s->fd, flags, &running);
    after_action(g);
}

static void on_timeout(uv_timer_t *timer) {
    struct glue *g = timer->data;
    int running;
    curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    after_action(g);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy;
    (void)socketp;
    struct glue *g = userp;
    grow(g, fd);
    struct sock *s = g->socks[fd];
    if (what == CURL_POLL_REMOVE) {
        if (s == NULL) {
            return 0;
        }
        s->wanted = 0;
        if (!g->ours[fd]) {
            /* Not a connection of ours: no close callback will tell us when
             * it goes, so let go of it now. */
            drop_sock(g, fd);
        }
        return 0;
    }
    int events = 0;
    if (what & CURL_POLL_IN) {
        events |= UV_READABLE;
    }
    if (what & CURL_POLL_OUT) {
        events |= UV_WRITABLE;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            die("out of memory");
        }
        s->fd = fd;
        s->glue = g;
        if (uv_poll_init_socket(g->loop, &s->poll, fd) != 0) {
            die("uv_poll_init_socket failed");
        }
        s->poll.data = s;
        g->socks[fd] = s;
    }
    s->wanted = events;
    if (s->started != events) {
        if (uv_poll_start(&s->poll, events, on_poll) != 0) {
            die("uv_poll_start failed");
        }
        s->started = events;
    }
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    struct glue *g = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&g->timer);
    } else {
        /* 0 ms too: the socket action runs from the loop, never from here. */
        uv_timer_start(&g->timer, on_timeout, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address) {
    (void)purpose;
    struct glue *g = clientp;
    curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
    if (fd != CURL_SOCKET_BAD) {
        grow(g, fd);
        g->ours[fd] = 1;
    }
    return fd;
}

static int close_cb(void *clientp, curl_socket_t fd) {
    struct glue *g = clientp;
    if ((size_t)fd < g->nfds) {
        drop_sock(g, fd);
        g->ours[fd] = 0;
    }
    return close(fd);
}

/* Reads completions once libcurl returned; re-arms finished handles. */
static void after_action(struct glue *g) {
    CURLMsg *msg;
    int left;
    while (!g->finished && (msg = curl_multi_info_read(g->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct slot *slot;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&slot);
        curl_multi_remove_handle(g->multi, easy);
        g->active--;
        if (check_transfer(g->job, slot, result, g->failure, sizeof g->failure) != 0) {
            finish(g);
            return;
        }
        g->done++;
        g->bytes += slot->bytes;
        if (g->next < g->job->count) {
            arm(g->job, slot, g->next++);
            if (curl_multi_add_handle(g->multi, easy) != CURLM_OK) {
                snprintf(g->failure, sizeof g->failure, "curl_multi_add_handle failed");
                finish(g);
                return;
            }
            g->active++;
        }
    }
    if (!g->finished && g->active == 0) {
        finish(g);
    }
}

/* Everything done (or failed): release libcurl's connections (their poll
 * handles close in close_cb) and the timer; uv_run then returns. */
static void finish(struct glue *g) {
    if (g->finished) {
        return;
    }
    g->finished = 1;
    for (size_t i = 0; i < g->pool; i++) {
        curl_multi_remove_handle(g->multi, g->slots[i].easy);
    }
    curl_multi_cleanup(g->multi);
    g->multi = NULL;
    for (size_t fd = 0; fd < g->nfds; fd++) {
        drop_sock(g, (curl_socket_t)fd);
    }
    uv_close((uv_handle_t *)&g->timer, NULL);
}

int main(int argc, char **argv) {
    struct job job;
    if (parse_job(argc, argv, &job) != 0) {
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        die("uv_loop_init failed");
    }
    struct glue g;
    memset(&g, 0, sizeof g);
    g.loop = &loop;
    g.job = &job;
    g.multi = curl_multi_init();
    if (g.multi == NULL) {
        die("curl_multi_init failed");
    }
    limit_multi(g.multi, &job);
    curl_multi_setopt(g.multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(g.multi, CURLMOPT_SOCKETDATA, &g);
    curl_multi_setopt(g.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(g.multi, CURLMOPT_TIMERDATA, &g);
    uv_timer_init(&loop, &g.timer);
    g.timer.data = &g;
    struct curl_slist *headers = job_headers(&job);

    g.pool = job.inflight < job.count ? job.inflight : job.count;
    g.slots = calloc(g.pool ? g.pool : 1, sizeof *g.slots);
    if (g.slots == NULL) {
        die("out of memory");
    }
    for (size_t i = 0; i < g.pool; i++) {
        CURL *easy = pooled_easy(&job, &g.slots[i], headers);
        curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_cb);
        curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &g);
        curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
        curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, &g);
        arm(&job, &g.slots[i], g.next++);
        if (curl_multi_add_handle(g.multi, easy) != CURLM_OK) {
            die("curl_multi_add_handle failed");
        }
        g.active++;
    }
    if (g.pool == 0) {
        finish(&g);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int loop_rc = uv_loop_close(&loop);
    for (size_t i = 0; i < g.pool; i++) {
        curl_easy_cleanup(g.slots[i].easy);
    }
    free(g.slots);
    free(g.socks);
    free(g.ours);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    if (loop_rc != 0 && !g.failure[0]) {
        snprintf(g.failure, sizeof g.failure, "uv_loop_close: %s", uv_strerror(loop_rc));
    }
    int rc = report(g.done, g.bytes, &job, g.failure);
    free_job(&job);
    return rc;
}
