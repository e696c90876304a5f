/* test_config.c - config.lua loading: defaults, every setting, errors with file:line,
 * warnings, path resolution, require, copy/free. Each test writes its config files
 * into a fresh mkdtemp folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "config.h"
#include "lua_host.h"
#include "server.h"

struct fx {
    char dir[64];        /* the temporary folder */
    char path[128];      /* dir/config.lua */
    char err[512];
    struct lh_config c;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/lhcfg.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/config.lua", f->dir);
    *state = f;
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lh_config_free(&f->c);
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Writes text into dir/name (creating one level of sub-folder if name has one). */
static void write_file(const char *dir, const char *name, const char *text)
{
    char p[256];
    const char *slash = strrchr(name, '/');
    if (slash != NULL) {
        snprintf(p, sizeof p, "%s/%.*s", dir, (int)(slash - name), name);
        mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Writes config.lua and loads it; returns lh_config_load's result. */
static int load(struct fx *f, const char *text)
{
    write_file(f->dir, "config.lua", text);
    lh_config_free(&f->c);
    f->err[0] = '\0';
    return lh_config_load(&f->c, f->path, f->err, sizeof f->err);
}

/* Loads text, expects failure and an error message equal to "<path><rest>". */
static void expect_error(struct fx *f, const char *text, const char *rest)
{
    char want[700];
    assert_int_equal(load(f, text), -1);
    snprintf(want, sizeof want, "%s%s", f->path, rest);
    assert_string_equal(f->err, want);
    assert_null(f->c.host);            /* c is left freed */
    assert_null(f->c.path);
}

static void load_ok(struct fx *f, const char *text)
{
    int rc = load(f, text);
    if (rc != 0)
        fail_msg("load failed: %s", f->err);
}

/* ---- defaults ------------------------------------------------------------------- */

static void check_default_values(const struct lh_config *c)
{
    assert_int_equal(c->port, 8080);
    assert_string_equal(c->host, "127.0.0.1");
    assert_int_equal(c->workers, 1);
    assert_string_equal(c->index, "index.html");
    assert_false(c->autoindex);
    assert_false(c->dotfiles);
    assert_string_equal(c->access_log, "-");
    assert_string_equal(c->error_log, "-");
    assert_true(c->shutdown_timeout == 5);
    assert_true(c->keepalive.enabled);
    assert_true(c->keepalive.timeout == 15);
    assert_int_equal(c->keepalive.max_requests, 1000);
    assert_int_equal(c->keepalive.max_per_client, 64);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->limits.header_bytes, 8192);
    assert_int_equal(c->limits.body_bytes, 1048576);
    assert_true(c->limits.request_timeout == 10);
    assert_int_equal(c->limits.handler_timeout_ms, 2000);
    assert_int_equal(c->limits.lua_memory_mb, 64);
    assert_false(c->cors.enabled);
    assert_null(c->cors.origins);
    assert_null(c->cors.methods);
    assert_null(c->cors.headers);
    assert_false(c->cors.credentials);
    assert_int_equal(c->cors.max_age, 600);
    assert_null(c->fallback);
    assert_true(c->compress);
    for (int s = LH_ERROR_PAGE_MIN; s <= LH_ERROR_PAGE_MAX; s++)
        assert_null(c->error_pages[s - LH_ERROR_PAGE_MIN]);
    assert_int_equal(c->nwarnings, 0);
}

static void test_defaults(void **state)
{
    struct fx *f = *state;
    assert_int_equal(lh_config_defaults(&f->c), 0);
    check_default_values(&f->c);
    assert_null(f->c.path);
    assert_string_equal(f->c.dir, ".");
    assert_string_equal(f->c.docroot, "html");
}

static void test_empty_file_gives_defaults(void **state)
{
    struct fx *f = *state;
    char want[128];
    load_ok(f, "-- nothing here\n");
    check_default_values(&f->c);
    assert_string_equal(f->c.path, f->path);
    assert_string_equal(f->c.dir, f->dir);
    snprintf(want, sizeof want, "%s/html", f->dir);
    assert_string_equal(f->c.docroot, want);
}

/* ---- good files --------------------------------------------------------------- */

static void test_every_setting(void **state)
{
    struct fx *f = *state;
    load_ok(f,
        "port = 9090\n"
        "host = '0.0.0.0'\n"
        "docroot = '/srv/www'\n"
        "workers = 4\n"
        "index = 'home.htm'\n"
        "autoindex = true\n"
        "dotfiles = true\n"
        "access_log = '/var/log/a.log'\n"
        "error_log = '/var/log/e.log'\n"
        "shutdown_timeout = 2.5\n"
        "keepalive = { enabled = false, timeout = 0.5, max_requests = 7, max_per_client = 3 }\n"
        "max_connections = 500\n"
        "limits = { header_bytes = 4096, body_bytes = 0, request_timeout = 1.5,\n"
        "           handler_timeout_ms = 100, lua_memory_mb = 8 }\n");
    struct lh_config *c = &f->c;
    assert_int_equal(c->port, 9090);
    assert_string_equal(c->host, "0.0.0.0");
    assert_string_equal(c->docroot, "/srv/www");
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->index, "home.htm");
    assert_true(c->autoindex);
    assert_true(c->dotfiles);
    assert_string_equal(c->access_log, "/var/log/a.log");
    assert_string_equal(c->error_log, "/var/log/e.log");
    assert_true(c->shutdown_timeout == 2.5);
    assert_false(c->keepalive.enabled);
    assert_true(c->keepalive.timeout == 0.5);
    assert_int_equal(c->keepalive.max_requests, 7);
    assert_int_equal(c->keepalive.max_per_client, 3);
    assert_int_equal(c->max_connections, 500);
    assert_int_equal(c->limits.header_bytes, 4096);
    assert_int_equal(c->limits.body_bytes, 0);
    assert_true(c->limits.request_timeout == 1.5);
    assert_int_equal(c->limits.handler_timeout_ms, 100);
    assert_int_equal(c->limits.lua_memory_mb, 8);
    assert_int_equal(c->nwarnings, 0);
}

static void test_partial_tables_keep_defaults(void **state)
{
    struct fx *f = *state;
    load_ok(f, "keepalive = { timeout = 5 }\nlimits = { body_bytes = 10 }\n");
    assert_true(f->c.keepalive.timeout == 5);
    assert_true(f->c.keepalive.enabled);
    assert_int_equal(f->c.keepalive.max_requests, 1000);
    assert_int_equal(f->c.keepalive.max_per_client, 64);
    assert_int_equal(f->c.limits.body_bytes, 10);
    assert_int_equal(f->c.limits.header_bytes, 8192);
    assert_int_equal(f->c.limits.handler_timeout_ms, 2000);
}

static void test_values_computed_and_reassigned(void **state)
{
    struct fx *f = *state;
    /* integral floats are integers; the last assignment wins; nil restores the default;
     * a field changed after the table was assigned counts. */
    load_ok(f, "port = 8000.0 + 81\nworkers = 3\nworkers = nil\n"
               "keepalive = {}\nkeepalive.max_requests = 2 * 21\n"
               "access_log = false\n");
    assert_int_equal(f->c.port, 8081);
    assert_int_equal(f->c.workers, 1);
    assert_int_equal(f->c.keepalive.max_requests, 42);
    assert_null(f->c.access_log);
}

static void test_workers_auto(void **state)
{
    struct fx *f = *state;
    load_ok(f, "workers = 'auto'\n");
    assert_true(f->c.workers >= 1);
    assert_true(f->c.workers <= 256);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n >= 1 && n <= 256)
        assert_int_equal(f->c.workers, n);
}

/* ---- paths and require ---------------------------------------------------------- */

static void test_relative_paths_resolved(void **state)
{
    struct fx *f = *state;
    char want[160];
    load_ok(f, "docroot = 'site/public'\naccess_log = 'logs/access.log'\nerror_log = '-'\n");
    snprintf(want, sizeof want, "%s/site/public", f->dir);
    assert_string_equal(f->c.docroot, want);
    snprintf(want, sizeof want, "%s/logs/access.log", f->dir);
    assert_string_equal(f->c.access_log, want);
    assert_string_equal(f->c.error_log, "-");

    load_ok(f, "docroot = '/abs/root'\nerror_log = 'err.log'\n");
    assert_string_equal(f->c.docroot, "/abs/root");
    assert_string_equal(f->c.access_log, "-");
    snprintf(want, sizeof want, "%s/err.log", f->dir);
    assert_string_equal(f->c.error_log, want);
}

/* A config named by a bare file name lives in "."; relative settings stay relative,
 * and messages name the file as given ("config.lua:3"). */
static void test_config_in_current_folder(void **state)
{
    struct fx *f = *state;
    char old[4096];
    int rc;

    assert_non_null(getcwd(old, sizeof old));
    write_file(f->dir, "config.lua", "docroot = 'www'\n");
    assert_int_equal(chdir(f->dir), 0);
    rc = lh_config_load(&f->c, "config.lua", f->err, sizeof f->err);
    if (rc == 0) {
        assert_string_equal(f->c.dir, ".");
        assert_string_equal(f->c.path, "config.lua");
        assert_string_equal(f->c.docroot, "www");
    }
    write_file(f->dir, "config.lua", "port = 1\n\nport = = 2\n");
    lh_config_free(&f->c);
    int rc2 = lh_config_load(&f->c, "config.lua", f->err, sizeof f->err);
    assert_int_equal(chdir(old), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(rc2, -1);
    assert_non_null(strstr(f->err, "config.lua:3:"));
    assert_ptr_equal(strstr(f->err, "config.lua:3:"), f->err);
}

static void test_require_from_scripts_and_folder(void **state)
{
    struct fx *f = *state;
    write_file(f->dir, "scripts/mymod.lua", "return { port = 9191 }\n");
    write_file(f->dir, "scripts/pkg/init.lua", "return { workers = 3 }\n");
    write_file(f->dir, "besides.lua", "return 'x.htm'\n");
    load_ok(f, "port = require('mymod').port\n"
               "workers = require('pkg').workers\n"
               "index = require('besides')\n");
    assert_int_equal(f->c.port, 9191);
    assert_int_equal(f->c.workers, 3);
    assert_string_equal(f->c.index, "x.htm");
    assert_int_equal(f->c.nwarnings, 0);
}

static void test_require_missing_module(void **state)
{
    struct fx *f = *state;
    assert_int_equal(load(f, "\nlocal m = require('nosuchmod')\n"), -1);
    char want[160];
    snprintf(want, sizeof want, "%s:2: module 'nosuchmod' not found", f->path);
    assert_ptr_equal(strstr(f->err, want), f->err);
    /* the search path names scripts/ beside the config; one line only */
    snprintf(want, sizeof want, "%s/scripts/nosuchmod.lua", f->dir);
    assert_non_null(strstr(f->err, want));
    assert_null(strchr(f->err, '\n'));
}

/* ---- errors --------------------------------------------------------------------- */

static void test_missing_file(void **state)
{
    struct fx *f = *state;
    char want[200];
    snprintf(f->path, sizeof f->path, "%s/absent.lua", f->dir);
    assert_int_equal(lh_config_load(&f->c, f->path, f->err, sizeof f->err), -1);
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", f->path);
    assert_string_equal(f->err, want);
    assert_null(f->c.path);
    assert_null(f->c.host);
}

static void test_syntax_error(void **state)
{
    struct fx *f = *state;
    assert_int_equal(load(f, "port = 1\n-- two\nport = = 3\n"), -1);
    char want[160];
    snprintf(want, sizeof want, "%s:3:", f->path);
    assert_ptr_equal(strstr(f->err, want), f->err);
    assert_non_null(strstr(f->err, "near '='"));
}

static void test_runtime_errors(void **state)
{
    struct fx *f = *state;
    expect_error(f, "port = 1\nerror('boom')\n", ":2: boom");
    /* no position from Lua: the loader adds the line that raised it */
    expect_error(f, "\n\nerror('bare', 0)\n", ":3: bare");
    expect_error(f, "error({})\n", ":1: (error object is a table value)");
    /* multi-line messages become one line */
    expect_error(f, "error('a\\nb')\n", ":1: a b");
    expect_error(f, "local t = nil\nlocal x = t.field\n",
                 ":2: attempt to index a nil value (local 't')");
    /* route() is not defined yet: an ordinary Lua error */
    assert_int_equal(load(f, "route('GET', '/', function() end)\n"), -1);
    assert_non_null(strstr(f->err, ":1: attempt to call a nil value (global 'route')"));
}

static int write_chunk(lua_State *L, const void *p, size_t n, void *ud)
{
    (void)L;
    return fwrite(p, 1, n, ud) == n ? 0 : 1;
}

static void test_binary_chunk_refused(void **state)
{
    struct fx *f = *state;
    lua_State *L = luaL_newstate();
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(L);
    assert_non_null(fp);
    assert_int_equal(luaL_loadstring(L, "port = 1"), LUA_OK);
    assert_int_equal(lua_dump(L, write_chunk, fp, 0), 0);
    lua_close(L);
    fclose(fp);
    assert_int_equal(lh_config_load(&f->c, f->path, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "binary chunk"));
    assert_non_null(strstr(f->err, f->path));
}

static void test_wrong_type_has_line(void **state)
{
    struct fx *f = *state;
    expect_error(f, "-- a comment\nhost = 'x'\n\nport = \"abc\"\n",
                 ":4: port must be an integer from 0 to 65535, got string \"abc\"");
    /* the line is the assignment's, even inside a function the chunk calls */
    expect_error(f, "local function set(v)\n  port = v\nend\nset(1)\nset(true)\n",
                 ":2: port must be an integer from 0 to 65535, got true");
    /* checked when assigned, not only at the end: a later good value does not hide it */
    expect_error(f, "port = 'abc'\nport = 80\n",
                 ":1: port must be an integer from 0 to 65535, got string \"abc\"");
}

static void test_out_of_range(void **state)
{
    struct fx *f = *state;
    expect_error(f, "port = 70000\n", ":1: port must be an integer from 0 to 65535, got 70000");
    expect_error(f, "port = -1\n", ":1: port must be an integer from 0 to 65535, got -1");
    expect_error(f, "port = 8080.5\n", ":1: port must be an integer from 0 to 65535, got 8080.5");
    expect_error(f, "workers = 0\n", ":1: workers must be an integer from 1 to 256 or \"auto\", got 0");
    expect_error(f, "workers = 257\n", ":1: workers must be an integer from 1 to 256 or \"auto\", got 257");
    expect_error(f, "shutdown_timeout = -1\n",
                 ":1: shutdown_timeout must be a number of seconds from 0 to 86400, got -1");
    expect_error(f, "max_connections = 0\n",
                 ":1: max_connections must be an integer from 1 to 1048576, got 0");
    expect_error(f, "max_connections = 2000000\n",
                 ":1: max_connections must be an integer from 1 to 1048576, got 2000000");
    expect_error(f, "limits = { header_bytes = 100 }\n",
                 ":1: limits.header_bytes must be an integer from 256 to 1048576, got 100");
    expect_error(f, "limits = { body_bytes = -1 }\n",
                 ":1: limits.body_bytes must be an integer >= 0, got -1");
    expect_error(f, "keepalive = { timeout = 0 }\n",
                 ":1: keepalive.timeout must be a number of seconds greater than 0 and at most 86400, got 0");
    /* NaN prints as "nan" or "-nan" depending on the platform */
    assert_int_equal(load(f, "keepalive = { timeout = 0/0 }\n"), -1);
    assert_non_null(strstr(f->err, ":1: keepalive.timeout must be a number of seconds"));
    assert_int_equal(load(f, "limits = { request_timeout = math.huge }\n"), -1);
    assert_non_null(strstr(f->err, ":1: limits.request_timeout must be a number of seconds"));
    expect_error(f, "limits = { lua_memory_mb = 0 }\n",
                 ":1: limits.lua_memory_mb must be an integer from 1 to 1048576, got 0");
    expect_error(f, "limits = { handler_timeout_ms = 0 }\n",
                 ":1: limits.handler_timeout_ms must be an integer from 1 to 86400000, got 0");
    expect_error(f, "keepalive = { max_requests = 0 }\n",
                 ":1: keepalive.max_requests must be an integer >= 1, got 0");
    expect_error(f, "keepalive = { max_per_client = 1.5 }\n",
                 ":1: keepalive.max_per_client must be an integer >= 1, got 1.5");
}

static void test_wrong_types(void **state)
{
    struct fx *f = *state;
    expect_error(f, "host = ''\n", ":1: host must be a non-empty string, got string \"\"");
    expect_error(f, "host = 127\n", ":1: host must be a non-empty string, got 127");
    expect_error(f, "docroot = {}\n", ":1: docroot must be a non-empty string, got table");
    expect_error(f, "workers = 'many'\n",
                 ":1: workers must be an integer from 1 to 256 or \"auto\", got string \"many\"");
    expect_error(f, "workers = '4'\n",
                 ":1: workers must be an integer from 1 to 256 or \"auto\", got string \"4\"");
    expect_error(f, "index = 'a/b.html'\n",
                 ":1: index must be a file name (a non-empty string without '/'), got string \"a/b.html\"");
    expect_error(f, "autoindex = 'yes'\n", ":1: autoindex must be true or false, got string \"yes\"");
    expect_error(f, "dotfiles = 1\n", ":1: dotfiles must be true or false, got 1");
    expect_error(f, "access_log = 42\n", ":1: access_log must be a file path, \"-\" or false, got 42");
    expect_error(f, "access_log = true\n", ":1: access_log must be a file path, \"-\" or false, got true");
    expect_error(f, "error_log = false\n", ":1: error_log must be a file path or \"-\", got false");
    expect_error(f, "keepalive = 5\n", ":1: keepalive must be a table, got 5");
    expect_error(f, "limits = print\n", ":1: limits must be a table, got function");
    expect_error(f, "keepalive = { timeout = \"x\" }\n",
                 ":1: keepalive.timeout must be a number of seconds greater than 0 and at most 86400, "
                 "got string \"x\"");
    expect_error(f, "keepalive = { enabled = 'no' }\n",
                 ":1: keepalive.enabled must be true or false, got string \"no\"");
    expect_error(f, "port = '8080'\n", ":1: port must be an integer from 0 to 65535, got string \"8080\"");
}

static void test_nested_field_changed_later(void **state)
{
    struct fx *f = *state;
    expect_error(f, "\nkeepalive = {}\nport = 1\nkeepalive.timeout = 'x'\n",
                 ":2: keepalive.timeout must be a number of seconds greater than 0 and at most 86400, "
                 "got string \"x\"");
    expect_error(f, "limits = {}\nlimits.body_byte = 5\n",
                 ":1: unknown setting 'limits.body_byte' (did you mean 'limits.body_bytes'?)");
}

static void test_unknown_nested_key(void **state)
{
    struct fx *f = *state;
    expect_error(f, "port = 1\nkeepalive = { timout = 5 }\n",
                 ":2: unknown setting 'keepalive.timout' (did you mean 'keepalive.timeout'?)");
    expect_error(f, "limits = { zzzz = 1 }\n", ":1: unknown setting 'limits.zzzz'");
    expect_error(f, "keepalive = { 5 }\n", ":1: unknown setting keepalive[1]");
}

/* ---- serving front ends: cors, fallback, compress, error_pages ------------------- */

static void test_front_settings(void **state)
{
    struct fx *f = *state;
    load_ok(f,
        "cors = { origins = { 'https://a.example', 'http://b.example:8080' },\n"
        "         methods = { 'GET', 'PUT' }, headers = {}, credentials = true,\n"
        "         max_age = 60 }\n"
        "fallback = 'app/index.html'\n"
        "compress = false\n"
        "error_pages = { [404] = '404.html', [500] = 'errors/50x.html', [503.0] = 'busy.html' }\n");
    struct lh_config *c = &f->c;
    assert_true(c->cors.enabled);
    assert_string_equal(c->cors.origins, "https://a.example, http://b.example:8080");
    assert_string_equal(c->cors.methods, "GET, PUT");
    assert_string_equal(c->cors.headers, "");           /* an empty list: none sent */
    assert_true(c->cors.credentials);
    assert_int_equal(c->cors.max_age, 60);
    assert_string_equal(c->fallback, "app/index.html"); /* relative to the docroot */
    assert_false(c->compress);
    assert_string_equal(c->error_pages[404 - LH_ERROR_PAGE_MIN], "404.html");
    assert_string_equal(c->error_pages[500 - LH_ERROR_PAGE_MIN], "errors/50x.html");
    assert_string_equal(c->error_pages[503 - LH_ERROR_PAGE_MIN], "busy.html");
    assert_null(c->error_pages[403 - LH_ERROR_PAGE_MIN]);
    assert_int_equal(c->nwarnings, 0);

    /* true: any origin, the default lists; false and a table that is emptied later */
    load_ok(f, "cors = true\nfallback = false\n");
    assert_true(f->c.cors.enabled);
    assert_null(f->c.cors.origins);
    assert_int_equal(f->c.cors.max_age, 600);
    assert_null(f->c.fallback);
    load_ok(f, "cors = { max_age = 0 }\ncors = false\n");
    assert_false(f->c.cors.enabled);
    load_ok(f, "cors = {}\n");
    assert_true(f->c.cors.enabled);
    assert_null(f->c.cors.origins);
}

static void test_front_errors(void **state)
{
    struct fx *f = *state;
    expect_error(f, "port = 1\ncors = 'yes'\n",
                 ":2: cors must be true, false or a table, got string \"yes\"");
    expect_error(f, "cors = { origin = {} }\n",
                 ":1: unknown setting 'cors.origin' (did you mean 'cors.origins'?)");
    expect_error(f, "cors = { origins = 'https://a.example' }\n",
                 ":1: cors.origins must be an array of origins, got string \"https://a.example\"");
    expect_error(f, "cors = { origins = { 'https://a.example/' } }\n",
                 ":1: cors.origins[1] must be an origin like \"https://a.example\" "
                 "(scheme://host[:port], no path), got string \"https://a.example/\"");
    expect_error(f, "cors = { origins = { 'https://a.example', '*' } }\n",
                 ":1: cors.origins[2] must be an origin like \"https://a.example\" "
                 "(scheme://host[:port], no path), got string \"*\"");
    expect_error(f, "cors = { methods = { 'GET', 5 } }\n",
                 ":1: cors.methods[2] must be a method name (a token such as \"PUT\"), got 5");
    expect_error(f, "cors = { headers = { 'X Y' } }\n",
                 ":1: cors.headers[1] must be a header name (a token such as \"Content-Type\"), "
                 "got string \"X Y\"");
    expect_error(f, "cors = { headers = { [2] = 'X' } }\n",
                 ":1: cors.headers must be an array of header names, got table");
    expect_error(f, "cors = { credentials = 'no' }\n",
                 ":1: cors.credentials must be true or false, got string \"no\"");
    expect_error(f, "cors = { max_age = 86401 }\n",
                 ":1: cors.max_age must be an integer from 0 to 86400, got 86401");
    expect_error(f, "\ncors = { credentials = true }\n",
                 ":2: cors.credentials = true needs cors.origins (browsers refuse credentials "
                 "from a server that allows any origin)");
    /* a field changed after the table was assigned: the table's line */
    expect_error(f, "cors = {}\nport = 1\ncors.max_age = 'x'\n",
                 ":1: cors.max_age must be an integer from 0 to 86400, got string \"x\"");

    expect_error(f, "fallback = true\n", ":1: fallback must be a file in docroot (a relative "
                 "path without '..') or false, got true");
    expect_error(f, "fallback = '/index.html'\n", ":1: fallback must be a file in docroot (a "
                 "relative path without '..') or false, got string \"/index.html\"");
    expect_error(f, "fallback = 'app/../../x.html'\n", ":1: fallback must be a file in docroot "
                 "(a relative path without '..') or false, got string \"app/../../x.html\"");
    expect_error(f, "fallback = ''\n", ":1: fallback must be a file in docroot (a relative "
                 "path without '..') or false, got string \"\"");
    expect_error(f, "compress = 'gzip'\n",
                 ":1: compress must be true or false, got string \"gzip\"");

    expect_error(f, "error_pages = '404.html'\n",
                 ":1: error_pages must be a table of status = file, got string \"404.html\"");
    expect_error(f, "error_pages = { ['404'] = '404.html' }\n",
                 ":1: error_pages keys must be error statuses (integers from 400 to 599), "
                 "got string \"404\"");
    expect_error(f, "error_pages = { [200] = 'ok.html' }\n",
                 ":1: error_pages keys must be error statuses (integers from 400 to 599), got 200");
    expect_error(f, "error_pages = { [404.5] = 'x.html' }\n",
                 ":1: error_pages keys must be error statuses (integers from 400 to 599), "
                 "got 404.5");
    expect_error(f, "error_pages = { 'x.html' }\n",
                 ":1: error_pages keys must be error statuses (integers from 400 to 599), got 1");
    expect_error(f, "error_pages = { [500] = '/srv/50x.html' }\n",
                 ":1: error_pages[500] must be a file in docroot (a relative path without '..'), "
                 "got string \"/srv/50x.html\"");
    expect_error(f, "error_pages = { [500] = '../50x.html' }\n",
                 ":1: error_pages[500] must be a file in docroot (a relative path without '..'), "
                 "got string \"../50x.html\"");
    expect_error(f, "error_pages = { [404] = true }\n",
                 ":1: error_pages[404] must be a file in docroot (a relative path without '..'), "
                 "got true");
}

/* A value stored around the proxy is still checked; the message names the file. */
static void test_value_set_through_G(void **state)
{
    struct fx *f = *state;
    expect_error(f, "_G.port = 'abc'\n",
                 ": port must be an integer from 0 to 65535, got string \"abc\"");
}

/* ---- warnings ------------------------------------------------------------------- */

static void test_unknown_global_warnings(void **state)
{
    struct fx *f = *state;
    char want[3][200];
    load_ok(f, "port = 1\nkeepalve = { timeout = 5 }\nzzz_thing = 1\ntimeout = 3\n");
    snprintf(want[0], sizeof want[0], "%s:2: unknown setting 'keepalve' (did you mean 'keepalive'?)", f->path);
    snprintf(want[1], sizeof want[1], "%s:3: unknown setting 'zzz_thing'", f->path);
    snprintf(want[2], sizeof want[2], "%s:4: unknown setting 'timeout' (did you mean 'keepalive.timeout'?)", f->path);
    assert_int_equal(f->c.nwarnings, 3);
    assert_string_equal(f->c.warnings[0], want[0]);
    assert_string_equal(f->c.warnings[1], want[1]);
    assert_string_equal(f->c.warnings[2], want[2]);
    /* the misspelt table did not change the real setting */
    assert_true(f->c.keepalive.timeout == 15);

    load_ok(f, "prot = 80\n");
    snprintf(want[0], sizeof want[0], "%s:1: unknown setting 'prot' (did you mean 'port'?)", f->path);
    assert_int_equal(f->c.nwarnings, 1);
    assert_string_equal(f->c.warnings[0], want[0]);
}

static void test_non_settings_not_warned(void **state)
{
    struct fx *f = *state;
    load_ok(f,
        "function helper() return 1 end\n"
        "handler = function() end\n"
        "MyTable = { a = 1 }\n"
        "DEBUG = true\n"
        "_ = 5\n"
        "local scratch = 3\n"
        "gone = 1\ngone = nil\n"
        "port = 8000 + helper()\n");
    assert_int_equal(f->c.nwarnings, 0);
    assert_int_equal(f->c.port, 8001);
}

/* The config.lua shipped at the top of the repository shows every default and loads
 * without warnings. `make unit` runs from there; elsewhere the test is skipped. */
static void test_shipped_config(void **state)
{
    struct fx *f = *state;
    if (access("config.lua", R_OK) != 0 || access("src/config.c", R_OK) != 0)
        skip();
    /* it declares routes, so it loads through the Lua host, as the server does */
    struct lh_lua *lua = lh_lua_new("config.lua", &f->c, false, f->err, sizeof f->err);
    if (lua == NULL)
        fail_msg("shipped config.lua: %s", f->err);
    check_default_values(&f->c);
    assert_string_equal(f->c.docroot, "html");
    assert_int_equal(f->c.nwarnings, 0);
    assert_true(lh_lua_route_count(lua) >= 5); /* /hello, the API, /admin/stats */
    lh_lua_free(lua);
}

/* ---- autoindex under --dev --------------------------------------------------- */

/* The loader records whether the file set autoindex, whichever value it chose. */
static void test_autoindex_set(void **state)
{
    struct fx *f = *state;
    assert_int_equal(lh_config_defaults(&f->c), 0);
    assert_false(f->c.autoindex_set);
    load_ok(f, "port = 1\n");
    assert_false(f->c.autoindex_set);
    load_ok(f, "autoindex = nil\n");
    assert_false(f->c.autoindex_set);
    load_ok(f, "autoindex = false\n");
    assert_true(f->c.autoindex_set);
    assert_false(f->c.autoindex);
    load_ok(f, "autoindex = true\n");
    assert_true(f->c.autoindex_set);
    assert_true(f->c.autoindex);
    load_ok(f, "_G.autoindex = false\n");
    assert_true(f->c.autoindex_set);
}

/* What lh_server_load_config (the server's start, reload and --check) makes of text
 * (NULL: no file, the built-in defaults) with and without --dev. */
static bool autoindex_with(struct fx *f, const char *text, bool dev)
{
    struct lh_options o = {.port = -1, .dev = dev};
    if (text) {
        write_file(f->dir, "config.lua", text);
        o.config_path = f->path;
    }
    lh_config_free(&f->c);
    if (lh_server_load_config(&o, &f->c, f->err, sizeof f->err) != 0)
        fail_msg("load failed: %s", f->err);
    return f->c.autoindex;
}

static void test_dev_autoindex_default(void **state)
{
    struct fx *f = *state;
    assert_true(autoindex_with(f, NULL, true));
    assert_false(autoindex_with(f, NULL, false));
    assert_true(autoindex_with(f, "port = 1\n", true));
    assert_false(autoindex_with(f, "port = 1\n", false));
    assert_false(autoindex_with(f, "autoindex = false\n", true)); /* the file wins */
    assert_true(autoindex_with(f, "autoindex = true\n", false));
    assert_true(autoindex_with(f, "autoindex = true\n", true));
}

/* ---- copy and free -------------------------------------------------------------- */

static void test_copy_and_free(void **state)
{
    struct fx *f = *state;
    struct lh_config copy = {0};
    load_ok(f, "port = 1234\naccess_log = false\nkeepalive = { timeout = 2 }\nextra = 1\n"
               "cors = { origins = { 'https://a.example' } }\nfallback = 'index.html'\n"
               "error_pages = { [404] = 'nf.html' }\n");
    assert_int_equal(lh_config_copy(&copy, &f->c), 0);
    lh_config_free(&f->c);
    assert_null(f->c.host);
    assert_int_equal(f->c.nwarnings, 0);

    assert_int_equal(copy.port, 1234);
    assert_null(copy.access_log);
    assert_string_equal(copy.host, "127.0.0.1");
    assert_string_equal(copy.error_log, "-");
    assert_string_equal(copy.index, "index.html");
    assert_string_equal(copy.dir, f->dir);
    assert_string_equal(copy.path, f->path);
    assert_true(copy.keepalive.timeout == 2);
    assert_int_equal(copy.limits.body_bytes, 1048576);
    assert_string_equal(copy.cors.origins, "https://a.example");
    assert_string_equal(copy.fallback, "index.html");
    assert_string_equal(copy.error_pages[404 - LH_ERROR_PAGE_MIN], "nf.html");
    assert_int_equal(copy.nwarnings, 1);
    assert_non_null(strstr(copy.warnings[0], "unknown setting 'extra'"));

    /* the copy is independent: copying again and freeing one leaves the other intact */
    struct lh_config again = {0};
    assert_int_equal(lh_config_copy(&again, &copy), 0);
    assert_ptr_not_equal(again.host, copy.host);
    assert_ptr_not_equal(again.warnings, copy.warnings);
    assert_ptr_not_equal(again.cors.origins, copy.cors.origins);
    assert_ptr_not_equal(again.error_pages[404 - LH_ERROR_PAGE_MIN],
                         copy.error_pages[404 - LH_ERROR_PAGE_MIN]);
    assert_ptr_not_equal(again.warnings[0], copy.warnings[0]);
    lh_config_free(&copy);
    assert_string_equal(again.docroot + strlen(again.docroot) - 5, "/html");
    assert_non_null(strstr(again.warnings[0], "unknown setting 'extra'"));
    lh_config_free(&again);
    lh_config_free(&again);   /* safe on a zeroed struct */
    assert_null(again.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_defaults),
        T(test_empty_file_gives_defaults),
        T(test_every_setting),
        T(test_partial_tables_keep_defaults),
        T(test_values_computed_and_reassigned),
        T(test_workers_auto),
        T(test_relative_paths_resolved),
        T(test_config_in_current_folder),
        T(test_require_from_scripts_and_folder),
        T(test_require_missing_module),
        T(test_missing_file),
        T(test_syntax_error),
        T(test_runtime_errors),
        T(test_binary_chunk_refused),
        T(test_wrong_type_has_line),
        T(test_out_of_range),
        T(test_wrong_types),
        T(test_nested_field_changed_later),
        T(test_unknown_nested_key),
        T(test_front_settings),
        T(test_front_errors),
        T(test_value_set_through_G),
        T(test_unknown_global_warnings),
        T(test_non_settings_not_warned),
        T(test_shipped_config),
        T(test_autoindex_set),
        T(test_dev_autoindex_default),
        T(test_copy_and_free),
#undef T
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
