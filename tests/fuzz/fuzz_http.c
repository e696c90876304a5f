/* libFuzzer target: the request-head parser and the chunked-body decoder.
 * The first byte picks header_bytes; the rest is a request as received. Checks that
 * what the parser returns stays inside the buffer and is consistent. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_head = 64 + (size_t)data[0] * 32;
    data++, size--;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    static struct lh_request r;
    /* fed whole, and fed in two parts: the same answer */
    size_t scanned = 0;
    int whole = lh_http_parse_head(buf, size, &scanned, max_head, &r);
    size_t cut = size / 2;
    scanned = 0;
    int part = lh_http_parse_head(buf, cut, &scanned, max_head, &r);
    if (part == 0)
        part = lh_http_parse_head(buf, size, &scanned, max_head, &r);
    else if (part > 0)
        part = whole; /* complete within the first half: the rest is the next request */
    assert(part == whole || (part < 0 && whole < 0));
    if (whole > 0) {
        assert((size_t)whole <= size && r.head_len == (uint32_t)whole);
        assert(r.method >= buf && r.method + r.method_len <= buf + size);
        assert(r.target >= buf && r.target + r.target_len <= buf + size);
        assert(r.version == 10 || r.version == 11);
        assert(!(r.chunked && r.content_length >= 0));
        assert(r.version == 10 || r.host != NULL);
        for (uint32_t i = 0; i < r.target_len; i++) /* RFC 3986: no raw UTF-8, no '#' */
            assert((unsigned char)r.target[i] > ' ' && (unsigned char)r.target[i] < 0x7f &&
                   r.target[i] != '#');
        if (r.host) /* a valid uri-host [":" port] has none of these */
            for (uint32_t i = 0; i < r.host->value_len; i++)
                assert(!memchr(" \t/@?#", r.host->value[i], 6));
        for (uint32_t i = 0; i < r.nheaders; i++) {
            assert(r.headers[i].name >= buf && r.headers[i].name + r.headers[i].name_len <= buf + size);
            assert(r.headers[i].value >= buf &&
                   r.headers[i].value + r.headers[i].value_len <= buf + size);
        }
        if (r.chunked) {
            /* decode the rest in place, byte by byte as a slow client sends it */
            struct lh_chunked c = {0};
            char *p = buf + whole;
            size_t n = size - (size_t)whole, raw = 0, out = 0, used, made;
            int rc = 0;
            for (size_t avail = 1; avail <= n && rc == 0; avail++) {
                rc = lh_chunked_decode(&c, p + raw, avail - raw, p + out, &used, &made, 1024);
                raw += used;
                out += made;
                assert(out <= raw && raw <= avail);
            }
        }
    } else {
        assert(whole == 0 || whole == -400 || whole == -414 || whole == -431 ||
               whole == -417 || whole == -501 || whole == -505);
    }
    free(buf);
    return 0;
}
