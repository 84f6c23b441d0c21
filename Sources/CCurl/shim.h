// Typed wrappers for libcurl's variadic calls, which Swift cannot call directly: one
// `static inline` function per call shape (curl_easy_setopt and curl_easy_getinfo take a
// `long`, a `curl_off_t`, a string, a pointer, a header list or a callback).
#ifndef ZYK_CCURL_SHIM_H
#define ZYK_CCURL_SHIM_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

typedef size_t (*zyk_curl_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);
typedef int (*zyk_curl_seek_callback)(void *userdata, curl_off_t offset, int origin);
typedef int (*zyk_curl_xferinfo_callback)(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode zyk_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode zyk_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/// libcurl copies string options (since 7.17), so the Swift string may go away after the call.
static inline CURLcode zyk_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode zyk_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

/// The list must stay alive until the transfer is over (libcurl does not copy it).
static inline CURLcode zyk_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

/// CURLOPT_READFUNCTION, CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION.
static inline CURLcode zyk_curl_setopt_data_callback(CURL *handle, CURLoption option, zyk_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/// CURLOPT_XFERINFOFUNCTION.
static inline CURLcode zyk_curl_setopt_xferinfo_callback(CURL *handle, zyk_curl_xferinfo_callback value) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, value);
}

/// CURLOPT_SEEKFUNCTION.
static inline CURLcode zyk_curl_setopt_seek_callback(CURL *handle, zyk_curl_seek_callback value) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, value);
}

static inline CURLcode zyk_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode zyk_curl_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode zyk_curl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif
