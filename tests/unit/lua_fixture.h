/* A unit test's own config.lua: written into a fresh folder under /tmp and loaded as
 * the server loads one (lh_lua_new), then removed with everything it made. */
#ifndef LH_LUA_FIXTURE_H
#define LH_LUA_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lua_host.h"

/* Write head and then body (NULL: nothing) as config.lua in a new folder (its path
 * into dir, the file's into path) and load it into *cfg. Fails the test when it does
 * not load. Returns the Lua state. */
static inline struct lh_lua *lua_fixture_load(char dir[64], char path[96], struct lh_config *cfg,
                                              const char *head, const char *body)
{
    strcpy(dir, "/tmp/lh-lua-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, 96, "%s/config.lua", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(head, fp);
    if (body)
        fputs(body, fp);
    fclose(fp);
    char err[512];
    struct lh_lua *lua = lh_lua_new(path, cfg, false, err, sizeof err);
    if (!lua)
        fail_msg("%s", err);
    return lua;
}

/* Free what lua_fixture_load made and remove its file and folder. */
static inline void lua_fixture_free(struct lh_lua *lua, struct lh_config *cfg, const char *dir,
                                    const char *path)
{
    lh_lua_free(lua);
    lh_config_free(cfg);
    unlink(path);
    rmdir(dir);
}

#endif
