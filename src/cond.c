/* cond.c - HTTP dates, entity tags, conditional requests and Range. See cond.h. */
#include "cond.h"

#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static char *two(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* The instants an IMF-fixdate can show: years 0000 to 9999. */
#define DATE_MIN (-62167219200LL) /* 0000-01-01 00:00:00 */
#define DATE_MAX 253402300799LL   /* 9999-12-31 23:59:59 */

void lh_http_date(time_t t, char *out)
{
    /* clamp rather than print nonsense for a wild mtime (gmtime_r fails past int years) */
    int64_t v = (int64_t)t;
    v = v < DATE_MIN ? DATE_MIN : v > DATE_MAX ? DATE_MAX : v;
    time_t ct = (time_t)v;
    struct tm tm;
    if (!gmtime_r(&ct, &tm)) {
        ct = 0;
        gmtime_r(&ct, &tm);
    }
    int year = tm.tm_year + 1900;
    char *p = out;
    memcpy(p, days[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = two(p, tm.tm_mday);
    *p++ = ' ';
    memcpy(p, months[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = two(p, year / 100);
    p = two(p, year % 100);
    *p++ = ' ';
    p = two(p, tm.tm_hour);
    *p++ = ':';
    p = two(p, tm.tm_min);
    *p++ = ':';
    p = two(p, tm.tm_sec);
    memcpy(p, " GMT", 5);
}

/* A tiny cursor over s[0..len) for the date grammars. */
struct cur {
    const char *p, *end;
};

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Exactly n digits (n2 = 0) or between n and n2 digits. */
static bool digits(struct cur *c, int n, int n2, int *v)
{
    int k = 0;
    *v = 0;
    int max = n2 ? n2 : n;
    while (k < max && c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        *v = *v * 10 + (*c->p++ - '0');
        k++;
    }
    return k >= n;
}

static bool month(struct cur *c, int *m)
{
    if (c->end - c->p < 3)
        return false;
    for (int i = 0; i < 12; i++)
        if (memcmp(c->p, months[i], 3) == 0) {
            *m = i;
            c->p += 3;
            return true;
        }
    return false;
}

static bool clock_part(struct cur *c, struct tm *tm)
{
    return digits(c, 2, 0, &tm->tm_hour) && lit(c, ":") && digits(c, 2, 0, &tm->tm_min) &&
           lit(c, ":") && digits(c, 2, 0, &tm->tm_sec);
}

static bool day_name(struct cur *c, bool long_form)
{
    static const char *const long_days[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                             "Thursday", "Friday", "Saturday"};
    for (int i = 0; i < 7; i++)
        if (lit(c, long_form ? long_days[i] : days[i]))
            return true;
    return false;
}

static bool leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Is the broken-down date (tm_year a full year here) a real calendar date? */
static bool valid_date(const struct tm *tm)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int max = mdays[tm->tm_mon] + (tm->tm_mon == 1 && leap(tm->tm_year));
    return tm->tm_mday >= 1 && tm->tm_mday <= max && tm->tm_hour <= 23 &&
           tm->tm_min <= 59 && tm->tm_sec <= 60; /* 60: a leap second */
}

/*
 * The three forms of RFC 9110 5.6.7, exactly (case-sensitive names, single spaces
 * except asctime's padded day, "GMT"). The weekday must be a valid name but is not
 * checked against the date. RFC 850 two-digit years: 70-99 are 19xx, 00-69 are 20xx.
 */
int lh_http_date_parse(const char *s, size_t len, time_t *t)
{
    struct tm tm;
    struct cur c;
    memset(&tm, 0, sizeof tm);
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    c = (struct cur){s, s + len};
    if (day_name(&c, false) && lit(&c, ", ") && digits(&c, 2, 0, &tm.tm_mday) &&
        lit(&c, " ") && month(&c, &tm.tm_mon) && lit(&c, " ") &&
        digits(&c, 4, 0, &tm.tm_year) && lit(&c, " ") && clock_part(&c, &tm) &&
        lit(&c, " GMT") && c.p == c.end)
        goto ok;
    /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
    memset(&tm, 0, sizeof tm);
    c = (struct cur){s, s + len};
    if (day_name(&c, true) && lit(&c, ", ") && digits(&c, 2, 0, &tm.tm_mday) &&
        lit(&c, "-") && month(&c, &tm.tm_mon) && lit(&c, "-") &&
        digits(&c, 2, 0, &tm.tm_year) && lit(&c, " ") && clock_part(&c, &tm) &&
        lit(&c, " GMT") && c.p == c.end) {
        tm.tm_year += tm.tm_year < 70 ? 2000 : 1900;
        goto ok;
    }
    /* asctime: Sun Nov  6 08:49:37 1994 */
    memset(&tm, 0, sizeof tm);
    c = (struct cur){s, s + len};
    if (day_name(&c, false) && lit(&c, " ") && month(&c, &tm.tm_mon) && lit(&c, " ")) {
        lit(&c, " "); /* a one-digit day is padded with a space */
        if (digits(&c, 1, 2, &tm.tm_mday) && lit(&c, " ") && clock_part(&c, &tm) &&
            lit(&c, " ") && digits(&c, 4, 0, &tm.tm_year) && c.p == c.end)
            goto ok;
    }
    return -1;
ok:
    if (!valid_date(&tm))
        return -1;
    tm.tm_year -= 1900;
    *t = timegm(&tm);
    return 0;
}

size_t lh_etag(int64_t size, int64_t mtime_sec, long mtime_nsec, char *out)
{
    /* the nanoseconds are in: an edit that keeps the size within the same second must
     * still change the tag (file systems without them give 0, which is stable). With
     * nsec below 10^9 the tag is at most 1+16+1+8+1+16+1 = 44 bytes. */
    if (mtime_nsec < 0 || mtime_nsec > 999999999)
        mtime_nsec = 0;
    return (size_t)snprintf(out, 48, "\"%llx.%lx-%llx\"", (unsigned long long)mtime_sec,
                            (unsigned long)mtime_nsec, (unsigned long long)size);
}

/* Walk a comma-separated list of entity tags; compare each to etag. */
static bool etag_list_match(const char *h, size_t len, const char *etag, bool weak)
{
    size_t elen = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (h[i] == ' ' || h[i] == '\t' || h[i] == ','))
            i++;
        if (i >= len)
            break;
        if (h[i] == '*')
            return weak; /* "*" matches any current representation (If-None-Match) */
        bool is_weak = len - i >= 2 && h[i] == 'W' && h[i + 1] == '/';
        if (is_weak)
            i += 2;
        size_t s = i;
        if (i < len && h[i] == '"') {
            i++;
            while (i < len && h[i] != '"')
                i++;
            if (i < len)
                i++;
        } else {
            while (i < len && h[i] != ',' && h[i] != ' ')
                i++;
        }
        if ((weak || !is_weak) && i - s == elen && memcmp(h + s, etag, elen) == 0)
            return true;
    }
    return false;
}

bool lh_etag_match(const char *header, size_t len, const char *etag)
{
    return etag_list_match(header, len, etag, true);
}

bool lh_not_modified(const char *inm, size_t inm_len, const char *ims, size_t ims_len,
                     const char *etag, time_t mtime)
{
    if (inm)
        return lh_etag_match(inm, inm_len, etag);
    time_t since;
    if (ims && lh_http_date_parse(ims, ims_len, &since) == 0)
        return mtime <= since;
    return false;
}

/* Parse 1*DIGIT at s[*i]; -1 when none or overflow. */
static int64_t number(const char *s, size_t len, size_t *i)
{
    size_t start = *i;
    int64_t v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        int d = s[(*i)++] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    return *i == start ? -1 : v;
}

enum lh_range_result lh_range_parse(const char *v, size_t len, int64_t size, int64_t *first,
                                    int64_t *last)
{
    size_t i = 0;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (len - i < 6 || strncasecmp(v + i, "bytes=", 6) != 0)
        return LH_RANGE_NONE;
    i += 6;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    int64_t a = -1, b = -1;
    if (i < len && v[i] == '-') {
        i++;
        b = number(v, len, &i); /* suffix: the last b bytes */
        if (b < 0)
            return LH_RANGE_NONE;
    } else {
        a = number(v, len, &i);
        if (a < 0 || i >= len || v[i] != '-')
            return LH_RANGE_NONE;
        i++;
        if (i < len && v[i] >= '0' && v[i] <= '9') {
            b = number(v, len, &i);
            if (b < 0 || b < a)
                return LH_RANGE_NONE;
        }
    }
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i != len)
        return LH_RANGE_NONE; /* several ranges, or junk: serve the whole file */
    if (a < 0) {
        if (b == 0 || size == 0)
            return LH_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return LH_RANGE_OK;
    }
    if (a >= size)
        return LH_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b < 0 || b >= size ? size - 1 : b;
    return LH_RANGE_OK;
}

bool lh_if_range_ok(const char *v, size_t len, const char *etag, time_t mtime)
{
    /* an entity tag starts with '"' or "W/"; a date may start with 'W' ("Wed, ...") */
    if ((len > 0 && v[0] == '"') || (len > 1 && v[0] == 'W' && v[1] == '/'))
        return etag_list_match(v, len, etag, false) && len == strlen(etag);
    time_t t;
    return lh_http_date_parse(v, len, &t) == 0 && t == mtime;
}
