/*
 * common.h -- what the C clients of benches/compare.rs share: the command
 * line, the URL list, the options every pooled easy handle gets once, and
 * the check of a finished transfer.
 *
 *     CLIENT --urls FILE --size BYTES --inflight N [--h2c] [--buffer BYTES]
 *            [--stream] [--close]
 *
 * Every client fetches every URL of FILE with N transfers in flight, checks
 * that each response is a 200 with exactly BYTES body bytes, and prints
 * "ok COUNT BYTES" -- or names the first failure on stderr and exits 1.
 * Bodies are always counted, never kept (--stream is accepted and changes
 * nothing). --close sends "Connection: close" with every request.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* Per-transfer timeout, as the Rust clients use. */
#define TRANSFER_TIMEOUT_MS 120000L

struct job {
    char **urls;
    size_t count;
    uint64_t size;
    size_t inflight;
    int h2c;
    long buffer; /* 0: libcurl's default */
    int close;
    char *text; /* the URL file, split in place */
};

/* One pooled easy handle and the transfer it is running. */
struct slot {
    CURL *easy;
    size_t index; /* into job.urls */
    uint64_t bytes;
    void *owner; /* the client's state */
};

static void die(const char *what) {
    fprintf(stderr, "%s\n", what);
    exit(1);
}

static int parse_job(int argc, char **argv, struct job *job) {
    memset(job, 0, sizeof *job);
    job->inflight = 1;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--urls") == 0 && value) {
            path = value;
            i++;
        } else if (strcmp(arg, "--size") == 0 && value) {
            job->size = strtoull(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--inflight") == 0 && value) {
            job->inflight = (size_t)strtoull(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--buffer") == 0 && value) {
            job->buffer = strtol(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--h2c") == 0) {
            job->h2c = 1;
        } else if (strcmp(arg, "--stream") == 0) {
            /* bodies are always counted */
        } else if (strcmp(arg, "--close") == 0) {
            job->close = 1;
        } else {
            fprintf(stderr, "unknown or incomplete option %s\n", arg);
            return -1;
        }
    }
    if (job->inflight == 0) {
        job->inflight = 1;
    }
    if (path == NULL) {
        fprintf(stderr, "--urls is required\n");
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    job->text = malloc((size_t)len + 1);
    if (job->text == NULL || fread(job->text, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    job->text[len] = 0;
    size_t lines = 0;
    for (long i = 0; i < len; i++) {
        lines += job->text[i] == '\n';
    }
    job->urls = calloc(lines + 1, sizeof *job->urls);
    if (job->urls == NULL) {
        return -1;
    }
    for (char *p = job->text; *p;) {
        char *end = strchr(p, '\n');
        if (end) {
            *end = 0;
        }
        if (*p) {
            job->urls[job->count++] = p;
        }
        if (!end) {
            break;
        }
        p = end + 1;
    }
    return 0;
}

static void free_job(struct job *job) {
    free(job->urls);
    free(job->text);
}

static size_t count_body(char *data, size_t size, size_t n, void *userdata) {
    (void)data;
    struct slot *slot = userdata;
    slot->bytes += size * n;
    return size * n;
}

/* The options set once per pooled handle; a transfer then only sets
 * CURLOPT_URL. `headers` is the "Connection: close" list or NULL. */
static CURL *pooled_easy(const struct job *job, struct slot *slot, struct curl_slist *headers) {
    CURL *easy = curl_easy_init();
    if (easy == NULL) {
        die("curl_easy_init failed");
    }
    slot->easy = easy;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, slot);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, count_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, slot);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, TRANSFER_TIMEOUT_MS);
    if (job->h2c) {
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    if (job->buffer > 0) {
        curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, job->buffer);
    }
    if (headers) {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    }
    return easy;
}

/* Points the slot's handle at URL `index`; the only per-transfer option. */
static void arm(const struct job *job, struct slot *slot, size_t index) {
    slot->index = index;
    slot->bytes = 0;
    curl_easy_setopt(slot->easy, CURLOPT_URL, job->urls[index]);
}

/* Checks a finished transfer; on failure writes a message to `why` and
 * returns -1. */
static int check_transfer(const struct job *job, struct slot *slot, CURLcode result, char *why,
                          size_t why_len) {
    const char *url = job->urls[slot->index];
    if (result != CURLE_OK) {
        snprintf(why, why_len, "%s: curl error %d (%s)", url, (int)result,
                 curl_easy_strerror(result));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(why, why_len, "%s: HTTP status %ld", url, status);
        return -1;
    }
    if (slot->bytes != job->size) {
        snprintf(why, why_len, "%s: %llu body bytes, expected %llu", url,
                 (unsigned long long)slot->bytes, (unsigned long long)job->size);
        return -1;
    }
    return 0;
}

static struct curl_slist *job_headers(const struct job *job) {
    return job->close ? curl_slist_append(NULL, "Connection: close") : NULL;
}

/* Connection limits as uvcurl's Multi sets them for the Rust clients. */
static void limit_multi(CURLM *multi, const struct job *job) {
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)job->inflight);
    curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)job->inflight);
}

/* Prints the report the runner expects; returns the exit status. */
static int report(size_t done, uint64_t bytes, const struct job *job, const char *failure) {
    if (failure && failure[0]) {
        fprintf(stderr, "%s\n", failure);
        return 1;
    }
    if (done != job->count || bytes != (uint64_t)done * job->size) {
        fprintf(stderr, "%zu of %zu transfers, %llu bytes: incomplete\n", done, job->count,
                (unsigned long long)bytes);
        return 1;
    }
    printf("ok %zu %llu\n", done, (unsigned long long)bytes);
    return 0;
}

#endif
