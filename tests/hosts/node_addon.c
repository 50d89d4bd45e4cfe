/*
 * node_addon.c -- a minimal N-API addon running uvcurl on Node's own loop
 * (tests/hosts.rs builds it with cc, no node-gyp):
 *
 *     cc -shared -fPIC -I/usr/include/node -I$PREFIX/include -I$PREFIX/include/uvcurl \
 *        node_addon.c -L$PREFIX/lib -luvcurl -o uvcurl_test.node
 *
 * Nothing else is linked: napi_* and uv_* resolve to what the node executable
 * exports, so uvcurl runs on Node's libuv.
 *
 * JS API:
 *   request(url, cainfo_or_null, callback(err_or_null, status, body_buffer))
 *   close(callback())      closes the multi; callback once it is released
 *   libuvVersion()         uvcurl_libuv_version(): the libuv uvcurl's calls reach
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <node_api.h>
#include <uv.h>
#include <uvcurl.h>

static uvcurl_multi *multi;
static napi_env the_env;
static napi_async_context async_ctx;
static napi_ref close_cb_ref;

struct job {
    napi_ref callback;
    char *data;
    size_t len, cap;
};

#define CHECK(call)                                                              \
    do {                                                                         \
        if ((call) != napi_ok) {                                                 \
            napi_throw_error(env, NULL, "napi call failed: " #call);             \
            return NULL;                                                         \
        }                                                                        \
    } while (0)

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

/* Calls `fn` from a libuv callback: a handle scope, and napi_make_callback so
 * that Node runs its microtasks afterwards. */
static void call_js(napi_ref ref, size_t argc, napi_value *argv) {
    napi_env env = the_env;
    napi_value fn, global, result;
    napi_get_reference_value(env, ref, &fn);
    napi_get_global(env, &global);
    napi_make_callback(env, async_ctx, global, fn, argc, argv, &result);
}

static void on_done(uvcurl_multi *m, CURL *easy, int result, void *userdata) {
    (void)m;
    struct job *job = userdata;
    napi_env env = the_env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    napi_value argv[3];
    if (result == 0) {
        napi_get_null(env, &argv[0]);
    } else {
        const char *text = result < 0 ? uvcurl_strerror(result) : curl_easy_strerror((CURLcode)result);
        napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &argv[0]);
    }
    napi_create_int32(env, (int32_t)status, &argv[1]);
    void *copy;
    napi_create_buffer_copy(env, job->len, job->data ? job->data : "", &copy, &argv[2]);
    napi_ref callback = job->callback;
    free(job->data);
    free(job);
    call_js(callback, 3, argv);
    napi_delete_reference(env, callback);
    napi_close_handle_scope(env, scope);
}

static napi_value request(napi_env env, napi_callback_info info) {
    size_t argc = 3;
    napi_value argv[3];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    char url[2048], cainfo[1024] = "";
    size_t len;
    CHECK(napi_get_value_string_utf8(env, argv[0], url, sizeof url, &len));
    napi_valuetype type;
    CHECK(napi_typeof(env, argv[1], &type));
    if (type == napi_string) CHECK(napi_get_value_string_utf8(env, argv[1], cainfo, sizeof cainfo, &len));
    struct job *job = calloc(1, sizeof *job);
    CHECK(napi_create_reference(env, argv[2], 1, &job->callback));
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (cainfo[0]) curl_easy_setopt(easy, CURLOPT_CAINFO, cainfo);
    int rc = uvcurl_multi_add(multi, easy, on_done, job);
    if (rc != UVCURL_OK) {
        curl_easy_cleanup(easy);
        napi_delete_reference(env, job->callback);
        free(job);
        napi_throw_error(env, NULL, uvcurl_strerror(rc));
    }
    return NULL;
}

static void on_closed(void *userdata) {
    (void)userdata;
    napi_env env = the_env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    call_js(close_cb_ref, 0, NULL);
    napi_delete_reference(env, close_cb_ref);
    napi_close_handle_scope(env, scope);
}

static napi_value close_multi(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    CHECK(napi_create_reference(env, argv[0], 1, &close_cb_ref));
    int rc = uvcurl_multi_close(multi, on_closed, NULL);
    if (rc != UVCURL_OK) napi_throw_error(env, NULL, uvcurl_strerror(rc));
    return NULL;
}

static napi_value libuv_version(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value v;
    CHECK(napi_create_uint32(env, uvcurl_libuv_version(), &v));
    return v;
}

NAPI_MODULE_INIT() {
    the_env = env;
    uv_loop_t *loop = NULL;
    CHECK(napi_get_uv_event_loop(env, &loop));
    int rc = uvcurl_multi_new(loop, &multi);
    if (rc != UVCURL_OK) {
        napi_throw_error(env, NULL, uvcurl_strerror(rc));
        return NULL;
    }
    napi_value name, resource;
    CHECK(napi_create_string_utf8(env, "uvcurl", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_object(env, &resource));
    CHECK(napi_async_init(env, resource, name, &async_ctx));
    napi_property_descriptor props[] = {
        {"request", NULL, request, NULL, NULL, NULL, napi_default, NULL},
        {"close", NULL, close_multi, NULL, NULL, NULL, napi_default, NULL},
        {"libuvVersion", NULL, libuv_version, NULL, NULL, NULL, napi_default, NULL},
    };
    CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
    return exports;
}
