/*
 * old_libuv.c -- LD_PRELOADed by tests/hosts.rs: makes the process's libuv
 * report version 1.43.0 (uv_version interposed for every caller), so that
 * uvcurl_multi_new's version check can be seen refusing it.
 */
unsigned int uv_version(void) { return (1u << 16) | (43u << 8) | 0u; }
