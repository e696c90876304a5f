/* config.c - run config.lua in a Lua state, validate its settings, fill struct lh_config.
 *
 * How a setting gets checked. The chunk's _ENV is an empty proxy table whose
 * metatable sends reads to the real globals (__index) and every assignment through
 * env_newindex (__newindex). env_newindex validates a known setting at the moment it
 * is assigned, so the error names the line doing the assignment, then records the
 * line and stores the value in the real globals. After the chunk has run, every
 * setting is read back from the real globals and validated again: that catches
 * fields of keepalive/limits changed later (reported at the line the table was
 * assigned) and values stored around the proxy (through _G, from a module).
 * Once the chunk has run, its _ENV is the real globals again.
 *
 * The settings are a table of data (`settings` below): name, kind, range, the
 * "must be ..." text, and where the value goes in struct lh_config.
 */
#include "config.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the settings ---------------------------------------------------------- */

enum kind {
    K_INT,      /* int: an integer in [imin, imax]; 8080.0 is accepted, 8080.5 is not */
    K_LONG,     /* long: likewise */
    K_SECONDS,  /* double: a finite number in [dmin, dmax] ((dmin, dmax] with OPEN_MIN) */
    K_BOOL,     /* bool */
    K_STRING,   /* char *: a non-empty string without NUL bytes */
    K_WORKERS,  /* int: like K_INT, or "auto" for the number of online CPUs */
    K_TABLE,    /* a table of `fields`; any other key in it is an error */
    K_LIST,     /* char *: an array of strings, each `item`, stored joined with ", " */
    K_PAGES,    /* char *[]: a table from an integer in [imin, imax] to a DOCFILE
                 * string, stored at [key - imin] */
};

/* Flags */
#define OPEN_MIN  0x01 /* K_SECONDS: the value must be greater than dmin */
#define NO_SLASH  0x02 /* K_STRING: a plain file name: no '/', not "." or ".." */
#define PATH      0x04 /* K_STRING: a relative value is resolved against the config's folder */
#define DASH      0x08 /* K_STRING with PATH: "-" means a standard stream, kept as is */
#define FALSE_OFF 0x10 /* K_STRING: false is accepted and stored as NULL */
#define SWITCH    0x20 /* K_TABLE: true and false too; the struct starts with a bool,
                        * which is set to the boolean, or to true for a table */
#define DOCFILE   0x40 /* K_STRING, K_PAGES: a file of the docroot, relative to it:
                        * not starting with '/', without a ".." segment or a '\\' */
#define ORIGIN    0x80 /* K_LIST: each item scheme "://" host [":" port] */
#define TOKEN     0x100 /* K_LIST: each item an RFC 9110 token (a method or header name) */
#define SEEN      0x200 /* top level: true goes to the bool at seen_off when the file sets it */

struct setting {
    const char *name;
    enum kind kind;
    const char *what;               /* completes "<name> must be ..." */
    const char *item;               /* K_LIST, K_PAGES: "<name>[k] must be ..." */
    unsigned flags;
    lua_Integer imin, imax;         /* K_INT, K_LONG, K_WORKERS */
    double dmin, dmax;              /* K_SECONDS */
    size_t off;                     /* where the value lives in its struct */
    size_t seen_off;                /* SEEN: where "the file set it" is recorded */
    const struct setting *fields;   /* K_TABLE: terminated by a NULL name */
};

#define MAX_SECONDS 86400.0

static const struct setting keepalive_fields[] = {
    { .name = "enabled", .kind = K_BOOL, .what = "true or false",
      .off = offsetof(struct lh_keepalive, enabled) },
    { .name = "timeout", .kind = K_SECONDS, .flags = OPEN_MIN,
      .what = "a number of seconds greater than 0 and at most 86400",
      .dmin = 0, .dmax = MAX_SECONDS, .off = offsetof(struct lh_keepalive, timeout) },
    { .name = "max_requests", .kind = K_LONG, .what = "an integer >= 1",
      .imin = 1, .imax = LONG_MAX, .off = offsetof(struct lh_keepalive, max_requests) },
    { .name = "max_per_client", .kind = K_LONG, .what = "an integer >= 1",
      .imin = 1, .imax = LONG_MAX, .off = offsetof(struct lh_keepalive, max_per_client) },
    { .name = NULL },
};

static const struct setting limits_fields[] = {
    { .name = "header_bytes", .kind = K_LONG, .what = "an integer from 256 to 1048576",
      .imin = 256, .imax = 1048576, .off = offsetof(struct lh_limits, header_bytes) },
    { .name = "body_bytes", .kind = K_LONG, .what = "an integer >= 0",
      .imin = 0, .imax = LONG_MAX, .off = offsetof(struct lh_limits, body_bytes) },
    { .name = "request_timeout", .kind = K_SECONDS, .flags = OPEN_MIN,
      .what = "a number of seconds greater than 0 and at most 86400",
      .dmin = 0, .dmax = MAX_SECONDS, .off = offsetof(struct lh_limits, request_timeout) },
    { .name = "handler_timeout_ms", .kind = K_LONG, .what = "an integer from 1 to 86400000",
      .imin = 1, .imax = 86400000, .off = offsetof(struct lh_limits, handler_timeout_ms) },
    { .name = "lua_memory_mb", .kind = K_LONG, .what = "an integer from 1 to 1048576",
      .imin = 1, .imax = 1048576, .off = offsetof(struct lh_limits, lua_memory_mb) },
    { .name = "stall_timeout", .kind = K_SECONDS, .flags = OPEN_MIN,
      .what = "a number of seconds greater than 0 and at most 86400",
      .dmin = 0, .dmax = MAX_SECONDS, .off = offsetof(struct lh_limits, stall_timeout) },
    { .name = "shared_mb", .kind = K_LONG, .what = "an integer from 1 to 65536",
      .imin = 1, .imax = 65536, .off = offsetof(struct lh_limits, shared_mb) },
    { .name = NULL },
};

static const struct setting cors_fields[] = {
    { .name = "origins", .kind = K_LIST, .flags = ORIGIN, .what = "an array of origins",
      .item = "an origin like \"https://a.example\" (scheme://host[:port], no path)",
      .off = offsetof(struct lh_cors, origins) },
    { .name = "methods", .kind = K_LIST, .flags = TOKEN, .what = "an array of method names",
      .item = "a method name (a token such as \"PUT\")",
      .off = offsetof(struct lh_cors, methods) },
    { .name = "headers", .kind = K_LIST, .flags = TOKEN, .what = "an array of header names",
      .item = "a header name (a token such as \"Content-Type\")",
      .off = offsetof(struct lh_cors, headers) },
    { .name = "credentials", .kind = K_BOOL, .what = "true or false",
      .off = offsetof(struct lh_cors, credentials) },
    { .name = "max_age", .kind = K_LONG, .what = "an integer from 0 to 86400",
      .imin = 0, .imax = 86400, .off = offsetof(struct lh_cors, max_age) },
    { .name = NULL },
};

#define MAX_WORKERS 256
#define DOCFILE_WHAT "a file in docroot (a relative path without '..')"

static const struct setting settings[] = {
    { .name = "port", .kind = K_INT, .what = "an integer from 0 to 65535",
      .imin = 0, .imax = 65535, .off = offsetof(struct lh_config, port) },
    { .name = "host", .kind = K_STRING, .what = "a non-empty string",
      .off = offsetof(struct lh_config, host) },
    { .name = "docroot", .kind = K_STRING, .flags = PATH, .what = "a non-empty string",
      .off = offsetof(struct lh_config, docroot) },
    { .name = "workers", .kind = K_WORKERS, .what = "an integer from 1 to 256 or \"auto\"",
      .imin = 1, .imax = MAX_WORKERS, .off = offsetof(struct lh_config, workers) },
    { .name = "index", .kind = K_STRING, .flags = NO_SLASH,
      .what = "a file name (a non-empty string without '/')",
      .off = offsetof(struct lh_config, index) },
    { .name = "autoindex", .kind = K_BOOL, .flags = SEEN, .what = "true or false",
      .off = offsetof(struct lh_config, autoindex),
      .seen_off = offsetof(struct lh_config, autoindex_set) },
    { .name = "dotfiles", .kind = K_BOOL, .what = "true or false",
      .off = offsetof(struct lh_config, dotfiles) },
    { .name = "access_log", .kind = K_STRING, .flags = PATH | DASH | FALSE_OFF,
      .what = "a file path, \"-\" or false", .off = offsetof(struct lh_config, access_log) },
    { .name = "error_log", .kind = K_STRING, .flags = PATH | DASH,
      .what = "a file path or \"-\"", .off = offsetof(struct lh_config, error_log) },
    { .name = "shutdown_timeout", .kind = K_SECONDS, .what = "a number of seconds from 0 to 86400",
      .dmin = 0, .dmax = MAX_SECONDS, .off = offsetof(struct lh_config, shutdown_timeout) },
    { .name = "keepalive", .kind = K_TABLE, .what = "a table", .fields = keepalive_fields,
      .off = offsetof(struct lh_config, keepalive) },
    { .name = "max_connections", .kind = K_LONG, .what = "an integer from 1 to 1048576",
      .imin = 1, .imax = 1048576, .off = offsetof(struct lh_config, max_connections) },
    { .name = "limits", .kind = K_TABLE, .what = "a table", .fields = limits_fields,
      .off = offsetof(struct lh_config, limits) },
    { .name = "unsafe_libs", .kind = K_BOOL, .what = "true or false",
      .off = offsetof(struct lh_config, unsafe_libs) },
    { .name = "cors", .kind = K_TABLE, .flags = SWITCH, .what = "true, false or a table",
      .fields = cors_fields, .off = offsetof(struct lh_config, cors) },
    { .name = "fallback", .kind = K_STRING, .flags = DOCFILE | FALSE_OFF,
      .what = DOCFILE_WHAT " or false", .off = offsetof(struct lh_config, fallback) },
    { .name = "compress", .kind = K_BOOL, .what = "true or false",
      .off = offsetof(struct lh_config, compress) },
    { .name = "error_pages", .kind = K_PAGES, .flags = DOCFILE,
      .what = "a table of status = file", .item = DOCFILE_WHAT,
      .imin = LH_ERROR_PAGE_MIN, .imax = LH_ERROR_PAGE_MAX,
      .off = offsetof(struct lh_config, error_pages) },
    { .name = NULL },
};

static const struct setting *find_setting(const struct setting *list, const char *name)
{
    for (; list->name != NULL; list++)
        if (strcmp(list->name, name) == 0)
            return list;
    return NULL;
}

/* ---- the struct: defaults, copy, free -------------------------------------- */

int lh_config_defaults(struct lh_config *c)
{
    *c = (struct lh_config){
        .port = 8080,
        .workers = 1,
        .autoindex = false,
        .dotfiles = false,
        .shutdown_timeout = 5,
        .keepalive = { .enabled = true, .timeout = 15, .max_requests = 1000,
                       .max_per_client = 64 },
        .max_connections = 10000,
        .limits = { .header_bytes = 8192, .body_bytes = 1048576, .request_timeout = 10,
                    .handler_timeout_ms = 2000, .lua_memory_mb = 64,
                    .stall_timeout = 10, .shared_mb = 16 },
        .cors = { .max_age = 600 },
        .compress = true,
    };
    c->dir = strdup(".");
    c->host = strdup("127.0.0.1");
    c->docroot = strdup("html");
    c->index = strdup("index.html");
    c->access_log = strdup("-");
    c->error_log = strdup("-");
    if (!c->dir || !c->host || !c->docroot || !c->index || !c->access_log || !c->error_log) {
        lh_config_free(c);
        return -1;
    }
    return 0;
}

void lh_config_free(struct lh_config *c)
{
    free(c->path);
    free(c->dir);
    free(c->host);
    free(c->docroot);
    free(c->index);
    free(c->access_log);
    free(c->error_log);
    free(c->cors.origins);
    free(c->cors.methods);
    free(c->cors.headers);
    free(c->fallback);
    for (size_t i = 0; i < sizeof c->error_pages / sizeof c->error_pages[0]; i++)
        free(c->error_pages[i]);
    for (size_t i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    free(c->warnings);
    memset(c, 0, sizeof *c);
}

/* *dst = a copy of src (NULL stays NULL). Returns 0, or -1 if out of memory. */
static int copy_str(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

int lh_config_copy(struct lh_config *dst, const struct lh_config *src)
{
    *dst = *src;
    /* Nothing in dst may point into src before the first failure can free it. */
    dst->path = dst->dir = dst->host = dst->docroot = NULL;
    dst->index = dst->access_log = dst->error_log = NULL;
    dst->cors.origins = dst->cors.methods = dst->cors.headers = dst->fallback = NULL;
    memset(dst->error_pages, 0, sizeof dst->error_pages);
    dst->warnings = NULL;
    dst->nwarnings = 0;

    if (copy_str(&dst->path, src->path) < 0 || copy_str(&dst->dir, src->dir) < 0 ||
        copy_str(&dst->host, src->host) < 0 || copy_str(&dst->docroot, src->docroot) < 0 ||
        copy_str(&dst->index, src->index) < 0 ||
        copy_str(&dst->access_log, src->access_log) < 0 ||
        copy_str(&dst->error_log, src->error_log) < 0 ||
        copy_str(&dst->cors.origins, src->cors.origins) < 0 ||
        copy_str(&dst->cors.methods, src->cors.methods) < 0 ||
        copy_str(&dst->cors.headers, src->cors.headers) < 0 ||
        copy_str(&dst->fallback, src->fallback) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof src->error_pages / sizeof src->error_pages[0]; i++)
        if (copy_str(&dst->error_pages[i], src->error_pages[i]) < 0)
            goto fail;
    if (src->nwarnings > 0) {
        dst->warnings = calloc(src->nwarnings, sizeof *dst->warnings);
        if (!dst->warnings)
            goto fail;
        for (; dst->nwarnings < src->nwarnings; dst->nwarnings++)
            if (copy_str(&dst->warnings[dst->nwarnings], src->warnings[dst->nwarnings]) < 0)
                goto fail;
    }
    return 0;
fail:
    lh_config_free(dst);
    return -1;
}

/* ---- describing values and suggesting names --------------------------------- */

/* Pushes a short one-line description of the value at idx for "got ...":
 * 70000, 8080.5, true, string "abc", table. */
static const char *push_description(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return lua_pushfstring(L, "%I", (lua_Integer)lua_tointeger(L, idx));
        return lua_pushfstring(L, "%f", (lua_Number)lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "string \"");
        for (size_t i = 0; i < len && i < 40; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '"' || ch == '\\') {
                luaL_addchar(&b, '\\');
                luaL_addchar(&b, (char)ch);
            } else if (ch < 0x20 || ch >= 0x7f) {
                char esc[8];
                snprintf(esc, sizeof esc, "\\%u", ch);
                luaL_addstring(&b, esc);
            } else {
                luaL_addchar(&b, (char)ch);
            }
        }
        luaL_addstring(&b, len > 40 ? "...\"" : "\"");
        luaL_pushresult(&b);
        return lua_tostring(L, -1);
    }
    default:
        return lua_pushstring(L, luaL_typename(L, idx));
    }
}

/* Edit distance (insertions, deletions, substitutions, adjacent swaps), or a large
 * number when the names are too different in length to be worth comparing. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXN = 40 };
    size_t la = strlen(a), lb = strlen(b);
    size_t d[MAXN + 1][MAXN + 1];

    if (la > MAXN || lb > MAXN || (la > lb ? la - lb : lb - la) > 2)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* A name is "close" to a known one at edit distance <= 2, and less than its length
 * (so "po" does not suggest "port"). */
static bool is_close(const char *name, const char *known, size_t *best)
{
    size_t dist = edit_distance(name, known);
    if (dist > 2 || dist >= strlen(name) || dist >= *best)
        return false;
    *best = dist;
    return true;
}

/* Pushes " (did you mean 'x'?)" for the closest name in list, or "" if none is close.
 * At the top level (parent NULL) the fields of keepalive/limits count too, so
 * `timeout = 5` suggests 'keepalive.timeout'. */
static void push_suggestion(lua_State *L, const struct setting *list, const char *parent,
                            const char *name)
{
    const struct setting *hit = NULL, *hit_parent = NULL;
    size_t best = SIZE_MAX;

    for (const struct setting *s = list; s->name != NULL; s++)
        if (is_close(name, s->name, &best))
            hit = s;
    for (const struct setting *s = list; parent == NULL && s->name != NULL; s++) {
        for (const struct setting *f = s->fields; f != NULL && f->name != NULL; f++) {
            if (is_close(name, f->name, &best)) {
                hit = f;
                hit_parent = s;
            }
        }
    }
    if (hit == NULL)
        lua_pushliteral(L, "");
    else if (parent != NULL)
        lua_pushfstring(L, " (did you mean '%s.%s'?)", parent, hit->name);
    else if (hit_parent != NULL)
        lua_pushfstring(L, " (did you mean '%s.%s'?)", hit_parent->name, hit->name);
    else
        lua_pushfstring(L, " (did you mean '%s'?)", hit->name);
}

/* ---- validation --------------------------------------------------------------- */

/* A DOCFILE: relative to the docroot, no ".." segment, no backslash (requests with
 * one are refused, so such a file could never be served). */
static bool docfile_ok(const char *str)
{
    if (str[0] == '/' || strchr(str, '\\'))
        return false;
    for (const char *p = str; *p;) {
        const char *end = strchrnul(p, '/');
        if (end - p == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p = *end ? end + 1 : end;
    }
    return true;
}

/* An origin as browsers send it in Origin: scheme "://" host [":" port], nothing
 * after (a trailing slash would never match). */
static bool origin_ok(const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    if (!isalpha(*p))
        return false;
    while (isalnum(*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp((const char *)p, "://", 3) != 0 || p[3] == '\0')
        return false;
    for (p += 3; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("/?#,", *p))
            return false;
    return true;
}

/* An RFC 9110 token: a method or a header name. */
static bool token_ok(const char *str)
{
    for (const unsigned char *p = (const unsigned char *)str; *p; p++)
        if (!isalnum(*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    return true;
}

/* Is the value at idx a non-empty string without NUL bytes? *str is the string. */
static bool plain_string(lua_State *L, int idx, const char **str)
{
    size_t len;
    if (lua_type(L, idx) != LUA_TSTRING)
        return false;
    *str = lua_tolstring(L, idx, &len);
    return len > 0 && strlen(*str) == len;
}

/* Is the value at idx an item of the K_LIST s? */
static bool item_ok(lua_State *L, const struct setting *s, int idx)
{
    const char *str;
    if (!plain_string(L, idx, &str))
        return false;
    return (s->flags & ORIGIN) ? origin_ok(str) : (s->flags & TOKEN) ? token_ok(str) : true;
}

/* Is the table at idx an array: keys exactly 1..#t? */
static bool is_array(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        lua_Integer k = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
        if (k < 1 || k > n) {
            lua_pop(L, 1);
            return false;
        }
        count++;
    }
    return count == n;
}

static bool integer_ok(lua_State *L, const struct setting *s, int idx)
{
    int isint = 0;
    lua_Integer n;

    if (lua_type(L, idx) != LUA_TNUMBER)
        return false;
    n = lua_tointegerx(L, idx, &isint);
    return isint && n >= s->imin && n <= s->imax;
}

static bool value_ok(lua_State *L, const struct setting *s, int idx)
{
    switch (s->kind) {
    case K_INT:
    case K_LONG:
        return integer_ok(L, s, idx);
    case K_WORKERS:
        if (lua_type(L, idx) == LUA_TSTRING)
            return strcmp(lua_tostring(L, idx), "auto") == 0;
        return integer_ok(L, s, idx);
    case K_SECONDS: {
        double n;
        if (lua_type(L, idx) != LUA_TNUMBER)
            return false;
        n = lua_tonumber(L, idx);
        return isfinite(n) && n <= s->dmax && ((s->flags & OPEN_MIN) ? n > s->dmin : n >= s->dmin);
    }
    case K_BOOL:
        return lua_type(L, idx) == LUA_TBOOLEAN;
    case K_STRING: {
        size_t len;
        const char *str;
        if ((s->flags & FALSE_OFF) && lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx))
            return true;
        if (lua_type(L, idx) != LUA_TSTRING)
            return false;
        str = lua_tolstring(L, idx, &len);
        if (len == 0 || strlen(str) != len)
            return false;
        if (s->flags & NO_SLASH)
            return !strchr(str, '/') && strcmp(str, ".") != 0 && strcmp(str, "..") != 0;
        if (s->flags & DOCFILE)
            return docfile_ok(str);
        return true;
    }
    case K_TABLE:
        return lua_type(L, idx) == LUA_TTABLE ||
               ((s->flags & SWITCH) && lua_type(L, idx) == LUA_TBOOLEAN);
    case K_LIST:
        return lua_type(L, idx) == LUA_TTABLE && is_array(L, idx);
    case K_PAGES:
        return lua_type(L, idx) == LUA_TTABLE;
    }
    return false;
}

/*
 * Raises unless the value at idx is valid for s. `where` is the position prefix
 * ("config.lua:3: " or "config.lua: "); parent names the enclosing table for a field.
 * A table's fields are checked too, and a key that is not one of its fields is an
 * error rather than a warning: a misspelt limit would otherwise silently keep its
 * default, and limits are what protect the server.
 */
/* Raises "<where><parent.>name<key> must be <what>, got <the value at idx>". */
static void must_be(lua_State *L, const char *where, const char *parent, const char *name,
                    const char *key, const char *what, int idx)
{
    const char *got = push_description(L, idx);
    lua_pushfstring(L, "%s%s%s%s%s must be %s, got %s", where, parent ? parent : "",
                    parent ? "." : "", name, key, what, got);
    lua_error(L);
}

/* The items of the K_LIST or K_PAGES s at idx (a table, an array for K_LIST). */
static void check_items(lua_State *L, const struct setting *s, int idx, const char *where,
                        const char *parent)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int status = lua_isinteger(L, -2) ? (int)lua_tointeger(L, -2) : 0;
        const char *str;
        if (s->kind == K_PAGES && (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < s->imin ||
                                   lua_tointeger(L, -2) > s->imax)) {
            const char *got = push_description(L, -2);
            lua_pushfstring(L, "%s%s keys must be error statuses (integers from %I to %I), "
                            "got %s", where, s->name, (lua_Integer)s->imin,
                            (lua_Integer)s->imax, got);
            lua_error(L);
        }
        bool ok = s->kind == K_LIST ? item_ok(L, s, -1)
                                    : plain_string(L, -1, &str) && docfile_ok(str);
        if (!ok)
            must_be(L, where, parent, s->name, lua_pushfstring(L, "[%d]", status), s->item, -2);
        lua_pop(L, 1);
    }
}

static void check_setting(lua_State *L, const struct setting *s, int idx, const char *where,
                          const char *parent)
{
    idx = lua_absindex(L, idx);
    if (!value_ok(L, s, idx))
        must_be(L, where, parent, s->name, "", s->what, idx);
    if (s->kind == K_LIST || s->kind == K_PAGES)
        check_items(L, s, idx, where, parent);
    if (s->kind != K_TABLE || lua_type(L, idx) != LUA_TTABLE)
        return;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const struct setting *f = NULL;
        if (lua_type(L, -2) == LUA_TSTRING)
            f = find_setting(s->fields, lua_tostring(L, -2));
        if (f == NULL && lua_type(L, -2) == LUA_TSTRING) {
            push_suggestion(L, s->fields, s->name, lua_tostring(L, -2));
            lua_pushfstring(L, "%sunknown setting '%s.%s'%s", where, s->name,
                            lua_tostring(L, -3), lua_tostring(L, -1));
            lua_error(L);
        }
        if (f == NULL) {
            const char *key = push_description(L, -2);
            lua_pushfstring(L, "%sunknown setting %s[%s]", where, s->name, key);
            lua_error(L);
        }
        check_setting(L, f, -1, where, s->name);
        lua_pop(L, 1);
    }
}

/* ---- the proxy _ENV ----------------------------------------------------------- */

/* Line of the Lua code at stack level `level`, or 0 if there is none (C code). */
static int line_at(lua_State *L, int level)
{
    lua_Debug ar;
    if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "l", &ar) || ar.currentline < 0)
        return 0;
    return ar.currentline;
}

/*
 * __newindex of the proxy: (proxy, key, value). Upvalues: 1 the real globals,
 * 2 name -> line of the last assignment, 3 the names in order of first assignment.
 * Level 1 of the stack is the Lua function doing the assignment, so luaL_where(L, 1)
 * is "config.lua:LINE: ".
 */
static int env_newindex(lua_State *L)
{
    lua_settop(L, 3);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const struct setting *s = find_setting(settings, lua_tostring(L, 2));
        if (s != NULL && !lua_isnil(L, 3)) {
            luaL_where(L, 1);
            check_setting(L, s, 3, lua_tostring(L, -1), NULL);
            lua_pop(L, 1);
        }
        lua_pushvalue(L, 2);
        if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNIL) {
            lua_pushvalue(L, 2);
            lua_Integer n = (lua_Integer)lua_rawlen(L, lua_upvalueindex(3));
            lua_rawseti(L, lua_upvalueindex(3), n + 1);
        }
        lua_pop(L, 1);
        lua_pushvalue(L, 2);
        lua_pushinteger(L, line_at(L, 1));
        lua_rawset(L, lua_upvalueindex(2));
    }
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
}

/* Pushes the proxy, the line table and the order table (in that order). */
static void push_proxy(lua_State *L)
{
    lua_newtable(L);                         /* proxy */
    lua_newtable(L);                         /* lines */
    lua_newtable(L);                         /* order */
    lua_createtable(L, 0, 2);                /* the proxy's metatable */
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_pushglobaltable(L);
    lua_pushvalue(L, -4);
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, env_newindex, 3);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -4);
}

/* ---- reading the settings back --------------------------------------------- */

struct run {
    struct lh_config *c;
    char src[LUA_IDSIZE];   /* the chunk's name as Lua prints it in messages */
};

/* Raises a memory error unless p is non-NULL. */
static void *need(lua_State *L, void *p)
{
    if (p == NULL)
        luaL_error(L, "not enough memory");
    return p;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* Replaces *field with a copy of str (NULL for none). */
static void store_string(lua_State *L, char **field, const char *str)
{
    char *copy = str ? need(L, strdup(str)) : NULL;
    free(*field);
    *field = copy;
}

/* Stores the (validated) value at idx into base + s->off. */
static void store_setting(lua_State *L, const struct setting *s, int idx, char *base)
{
    void *field = base + s->off;

    idx = lua_absindex(L, idx);
    switch (s->kind) {
    case K_INT:
        *(int *)field = (int)lua_tointeger(L, idx);
        break;
    case K_LONG:
        *(long *)field = (long)lua_tointeger(L, idx);
        break;
    case K_WORKERS:
        if (lua_type(L, idx) == LUA_TSTRING)       /* "auto" */
            *(int *)field = online_cpus();
        else
            *(int *)field = (int)lua_tointeger(L, idx);
        break;
    case K_SECONDS:
        *(double *)field = lua_tonumber(L, idx);
        break;
    case K_BOOL:
        *(bool *)field = lua_toboolean(L, idx);
        break;
    case K_STRING:                              /* lua_tostring(false) is NULL: FALSE_OFF */
        store_string(L, field, lua_tostring(L, idx));
        break;
    case K_TABLE:
        if (s->flags & SWITCH) {
            *(bool *)field = lua_toboolean(L, idx); /* a table is true */
            if (lua_type(L, idx) == LUA_TBOOLEAN)
                break;
        }
        for (const struct setting *f = s->fields; f->name != NULL; f++) {
            lua_pushstring(L, f->name);
            if (lua_rawget(L, idx) != LUA_TNIL)
                store_setting(L, f, -1, field);
            lua_pop(L, 1);
        }
        break;
    case K_LIST: {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (lua_Integer i = 1; lua_rawgeti(L, idx, i) != LUA_TNIL; i++) {
            if (i > 1)
                luaL_addstring(&b, ", ");
            luaL_addvalue(&b);
        }
        lua_pop(L, 1);
        luaL_pushresult(&b);
        store_string(L, field, lua_tostring(L, -1));
        lua_pop(L, 1);
        break;
    }
    case K_PAGES:
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            char **pages = field;
            store_string(L, &pages[lua_tointeger(L, -2) - s->imin], lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        break;
    }
}

/* Pushes the position prefix for a global: "config.lua:LINE: ", or "config.lua: "
 * if the chunk never assigned it (set through _G or by a module). */
static const char *push_where(lua_State *L, const struct run *r, int lines, const char *name)
{
    lua_Integer line;

    lua_getfield(L, lines, name);
    line = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (line > 0)
        return lua_pushfstring(L, "%s:%I: ", r->src, (lua_Integer)line);
    return lua_pushfstring(L, "%s: ", r->src);
}

/* Validates every known setting found in the real globals and stores it in r->c. */
static void read_settings(lua_State *L, const struct run *r, int lines)
{
    lua_pushglobaltable(L);
    for (const struct setting *s = settings; s->name != NULL; s++) {
        lua_pushstring(L, s->name);
        if (lua_rawget(L, -2) != LUA_TNIL) {
            int value = lua_gettop(L);
            check_setting(L, s, value, push_where(L, r, lines, s->name), NULL);
            lua_pop(L, 1);
            store_setting(L, s, value, (char *)r->c);
            if (s->flags & SEEN)
                *(bool *)((char *)r->c + s->seen_off) = true;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Rules that join two settings, checked once all are read. */
static void check_together(lua_State *L, const struct run *r, int lines)
{
    const struct lh_cors *cors = &r->c->cors;
    if (cors->enabled && cors->credentials && cors->origins == NULL) {
        lua_pushfstring(L, "%scors.credentials = true needs cors.origins (browsers refuse "
                        "credentials from a server that allows any origin)",
                        push_where(L, r, lines, "cors"));
        lua_error(L);
    }
}

/* Resolves relative PATH settings, set or default, against the config's folder
 * (left as they are when that folder is "."); "-" stays a standard stream. */
static void resolve_paths(lua_State *L, struct lh_config *c)
{
    size_t n = strlen(c->dir);

    if (strcmp(c->dir, ".") == 0)
        return;
    for (const struct setting *s = settings; s->name != NULL; s++) {
        char **field = (char **)((char *)c + s->off);
        if (!(s->flags & PATH) || *field == NULL || (*field)[0] == '/' ||
            ((s->flags & DASH) && strcmp(*field, "-") == 0))
            continue;
        store_string(L, field, lua_pushfstring(L, "%s%s%s", c->dir,
                                               c->dir[n - 1] == '/' ? "" : "/", *field));
        lua_pop(L, 1);
    }
}

static void add_warning(lua_State *L, struct lh_config *c, const char *msg)
{
    char **w = need(L, realloc(c->warnings, (c->nwarnings + 1) * sizeof *w));
    c->warnings = w;
    w[c->nwarnings] = need(L, strdup(msg));
    c->nwarnings++;
}

/* A global that looks like a setting: starts with a-z, then only a-z, 0-9, '_'.
 * `_`, CamelCase and UPPER_CASE names are the user's own. */
static bool looks_like_setting(const char *name)
{
    if (*name < 'a' || *name > 'z')
        return false;
    for (; *name; name++)
        if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') || *name == '_'))
            return false;
    return true;
}

/* One warning, in order of first assignment, for every global the chunk assigned
 * that looks like a setting, is not one, and does not hold a function. */
static void collect_warnings(lua_State *L, const struct run *r, int lines, int order)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, order);

    lua_pushglobaltable(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, order, i);
        const char *name = lua_tostring(L, -1);
        lua_pushvalue(L, -1);
        int type = lua_rawget(L, -3);
        lua_pop(L, 1);
        if (looks_like_setting(name) && !find_setting(settings, name) &&
            type != LUA_TNIL && type != LUA_TFUNCTION) {
            const char *where = push_where(L, r, lines, name);
            push_suggestion(L, settings, NULL, name);
            add_warning(L, r->c, lua_pushfstring(L, "%sunknown setting '%s'%s", where, name,
                                                 lua_tostring(L, -1)));
            lua_pop(L, 3);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* ---- running the chunk ------------------------------------------------------ */

/* package.path = the config's scripts/ and folder, then the default path. */
static void set_package_path(lua_State *L, const char *dir)
{
    lua_getglobal(L, "package");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "path");
        lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;%s/?.lua;%s/?/init.lua;%s",
                        dir, dir, dir, dir, lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
        lua_setfield(L, -3, "path");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Protected: (struct run *). Loads r->c->path as text, runs it with the proxy _ENV,
 * then reads the settings and warnings into r->c. */
static int config_main(lua_State *L)
{
    struct run *r = lua_touserdata(L, 1);
    lua_Debug ar;
    int lines, order;

    set_package_path(L, r->c->dir);
    if (luaL_loadfilex(L, r->c->path, "t") != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, -1);
    lua_getinfo(L, ">S", &ar);
    snprintf(r->src, sizeof r->src, "%s", ar.short_src);

    push_proxy(L);                        /* chunk proxy lines order */
    lines = lua_absindex(L, -2);
    order = lua_absindex(L, -1);
    lua_pushvalue(L, -3);
    if (lua_setupvalue(L, -5, 1) == NULL) /* a main chunk's first upvalue is _ENV */
        lua_pop(L, 1);
    lua_pushvalue(L, -4);
    lua_call(L, 0, 0);
    /* The handlers the chunk defined share its _ENV: give them the real globals, so
     * that a global a handler assigns at request time is not taken for a setting. */
    lua_pushglobaltable(L);
    if (lua_setupvalue(L, -5, 1) == NULL)
        lua_pop(L, 1);

    read_settings(L, r, lines);
    check_together(L, r, lines);
    resolve_paths(L, r->c);
    collect_warnings(L, r, lines, order);
    return 0;
}

/* A message looks positioned if it starts with "NAME:LINE:". */
static bool has_position(const char *msg)
{
    const char *colon = strchr(msg, ':');
    if (colon == NULL || colon == msg || memchr(msg, '\n', (size_t)(colon - msg)))
        return false;
    const char *p = colon + 1;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > colon + 1 && *p == ':';
}

/* Message handler: turns any error value into a string naming the file and line:
 * error("x", 0) or error({}) get the position of the innermost Lua code. */
static int on_error(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    lua_Debug ar;

    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (has_position(msg))
        return 1;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
            return 1;
        }
    }
    return 1;
}

/* Copies msg into err on one line, naming path first unless msg already does. */
static void set_error(char *err, size_t errlen, const char *path, const char *msg)
{
    if (err == NULL || errlen == 0)
        return;
    if (has_position(msg) || strstr(msg, path) != NULL)
        snprintf(err, errlen, "%s", msg);
    else
        snprintf(err, errlen, "%s: %s", path, msg);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

/*
 * Runs the config file c->path in L (standard libraries already open; c->dir set;
 * c holding the defaults) and fills c from it. The chunk's globals stay in L.
 * Returns 0, or -1 with a one-line message in err.
 */
static int run_config(lua_State *L, struct lh_config *c, char *err, size_t errlen)
{
    struct run r = { .c = c };
    int base = lua_gettop(L), rc = 0;

    lua_pushcfunction(L, on_error);
    lua_pushcfunction(L, config_main);
    lua_pushlightuserdata(L, &r);
    if (lua_pcall(L, 1, 0, base + 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        set_error(err, errlen, c->path, msg ? msg : "unknown error");
        rc = -1;
    }
    lua_settop(L, base);
    return rc;
}

static int open_libs(lua_State *L)
{
    luaL_openlibs(L);
    return 0;
}

/* The folder of path: "a/b/config.lua" -> "a/b", "config.lua" -> ".", "/x" -> "/". */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL)
        return strdup(".");
    n = (size_t)(slash - path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n == 0 ? strdup("/") : strndup(path, n);
}

int lh_config_load_in(struct lh_config *c, const char *path, lua_State *L, char *err,
                      size_t errlen)
{
    if (lh_config_defaults(c) < 0)
        goto oom;
    free(c->dir);
    c->path = strdup(path);
    c->dir = folder_of(path);
    if (!c->path || !c->dir)
        goto oom;
    if (run_config(L, c, err, errlen) == 0)
        return 0;
    lh_config_free(c);
    return -1;
oom:
    set_error(err, errlen, path, "not enough memory");
    lh_config_free(c);
    return -1;
}

int lh_config_load(struct lh_config *c, const char *path, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        set_error(err, errlen, path, "not enough memory");
        return -1;
    }
    lua_pushcfunction(L, open_libs);
    int rc = lua_pcall(L, 0, 0, 0) == LUA_OK ? lh_config_load_in(c, path, L, err, errlen) : -1;
    if (rc < 0 && lua_gettop(L) > 0)
        set_error(err, errlen, path, "not enough memory");
    lua_close(L);
    return rc;
}
