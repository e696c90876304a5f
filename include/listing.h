/* listing.h - the HTML page that lists a folder's entries; pure, no I/O. */
#ifndef LH_LISTING_H
#define LH_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One entry of a listed folder. The name (one path segment, no '/') is the caller's. */
struct lh_listing_entry {
    char *name;
    bool dir;
    int64_t size;   /* bytes; not shown for a folder */
    time_t mtime;   /* last modification */
};

/* Sort v in the order a listing shows: folders first, then files, each group by name
 * (ASCII letters compared without case, ties in byte order). */
void lh_listing_sort(struct lh_listing_entry *v, size_t n);

/*
 * The page listing the folder at path (decoded, starting and ending with '/'): an
 * HTML5 document titled "Index of PATH" with a table of name, size and modification
 * time (UTC), a "../" row except for "/", and v's entries in the order given. Names
 * are HTML-escaped for display and percent-encoded for links. Returns a malloc'd,
 * NUL-terminated page the caller frees, its length in *len; NULL if out of memory.
 */
char *lh_listing_page(const char *path, const struct lh_listing_entry *v, size_t n,
                      size_t *len);

/* Longest text lh_listing_size writes, with its NUL. */
#define LH_LISTING_SIZE_LEN 32

/* A size as people read it into out: "0 B" .. "1023 B", then one decimal in the
 * largest of KiB, MiB, GiB that keeps the number under 1024 once rounded
 * ("1.0 KiB", "1.5 MiB", "3072.0 GiB"); a negative size counts as 0. */
void lh_listing_size(int64_t bytes, char out[LH_LISTING_SIZE_LEN]);

/* Longest text lh_listing_time writes into either buffer, with its NUL. */
#define LH_LISTING_TIME_LEN 48

/* t in UTC, for people ("2024-03-09 14:05") into human and as ISO 8601 for a
 * <time datetime> ("2024-03-09T14:05:33Z") into iso. A time gmtime cannot convert
 * gives "" in both. */
void lh_listing_time(time_t t, char human[LH_LISTING_TIME_LEN], char iso[LH_LISTING_TIME_LEN]);

#endif
