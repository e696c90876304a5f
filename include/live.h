/* live.h - --dev live reload, the parts without I/O: the paths the server keeps for
 * itself under /__luahttpd/, the script every HTML page gets, and what a change to a
 * file means for the open pages. The connections and the watch are in src/live.c. */
#ifndef LH_LIVE_H
#define LH_LIVE_H

#include <stdbool.h>
#include <stddef.h>

/* The tag put before </body> of every HTML response in --dev. */
#define LH_LIVE_TAG "<script src=\"/__luahttpd/live.js\"></script>"

/* What a request target (as received: path and query) asks of the live-reload
 * paths: nothing of theirs, the script, the event stream, or another name under
 * /__luahttpd/ (404). */
enum lh_live_path { LH_LIVE_NONE, LH_LIVE_SCRIPT, LH_LIVE_EVENTS, LH_LIVE_OTHER };
enum lh_live_path lh_live_path_of(const char *target, size_t len);

/* The script LH_LIVE_TAG loads (a NUL-terminated JavaScript text, static). */
extern const char lh_live_js[];

/* Where LH_LIVE_TAG goes in html (len bytes): the offset of its last "</body" (any
 * case), or len when it has none. */
size_t lh_live_tag_at(const char *html, size_t len);

/* The last bytes of a stream so far, enough to see a "</body" split across pieces
 * (zeroed to start). */
struct lh_live_tail {
    char b[5];
    unsigned char n;
};

/* piece (len bytes) comes after what t has seen: does a "</body" (any case) that
 * began in an earlier piece end in it? t moves on past the piece. */
bool lh_live_tail_feed(struct lh_live_tail *t, const char *piece, size_t len);

/* html (len bytes) with LH_LIVE_TAG before its last "</body" (any case): a malloc'd
 * buffer of *out_len bytes, the caller's to free. NULL when the page has no </body>
 * (a fragment, which must stay as it is) or memory ran out. */
char *lh_live_inject(const char *html, size_t len, size_t *out_len);

/* Is a media type (a Content-Type value; parameters ignored, any case) HTML? */
bool lh_live_is_html(const char *type, size_t len);

/* What a changed file name (the last part of its path) means: nothing (an editor's
 * swap or backup file, a database journal, a hidden file), a stylesheet the pages can
 * swap in, or anything else, for which they reload. */
enum lh_live_change { LH_LIVE_IGNORE, LH_LIVE_CSS, LH_LIVE_RELOAD };
enum lh_live_change lh_live_change_of(const char *name);

#endif
