/* libFuzzer target: Range, HTTP dates, ETag lists and If-Range. The first 8 bytes
 * give the file size. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t raw;
    memcpy(&raw, data, 8);
    int64_t fsize = (int64_t)(raw % ((uint64_t)1 << 40));
    const char *v = (const char *)data + 8;
    size_t len = size - 8;
    int64_t a = -1, b = -1;
    enum lh_range_result r = lh_range_parse(v, len, fsize, &a, &b);
    if (r == LH_RANGE_OK)
        assert(0 <= a && a <= b && b < fsize);
    time_t t;
    if (lh_http_date_parse(v, len, &t) == 0 && t >= 0 && t < 253402300800LL) {
        char d[LH_HTTP_DATE_LEN + 1];
        lh_http_date(t, d);
        time_t back;
        assert(lh_http_date_parse(d, strlen(d), &back) == 0 && back == t);
    }
    char etag[48];
    lh_etag(fsize, (int64_t)(raw >> 24), (long)(raw % 1000000000), etag);
    (void)lh_etag_match(v, len, etag);
    (void)lh_if_range_ok(v, len, etag, (time_t)(raw >> 24));
    (void)lh_not_modified(v, len, v, len, etag, (time_t)(raw >> 24));
    return 0;
}
