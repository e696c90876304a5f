/* libFuzzer target: loading a config.lua, as the server does for each worker (the
 * settings, route(), before(), after(), json, log). The input is the file. Built with
 * LH_FUZZING, which takes io, os, package, debug and binary chunks away from the
 * generated Lua (it must not touch this machine) and bounds its run to
 * LH_CONFIG_MS; the state's allocator caps it at 64 MiB. The oracle: no crash or
 * sanitizer report, and either a config inside its documented ranges or an error
 * message that starts with the file's name. */
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "lua_host.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fd = memfd_create("config.lua", 0);
    assert(fd >= 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    /* log() and warnings go nowhere: keep the fuzzer's own output readable */
    lh_log_set_error_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    struct lh_config c = {0};
    char err[512] = "";
    struct lh_lua *lua = lh_lua_new(path, &c, false, err, sizeof err);
    if (lua) {
        assert(c.port >= 0 && c.port <= 65535 && c.workers >= 1 && c.workers <= 256);
        assert(c.host && *c.host && c.docroot && *c.docroot && c.error_log);
        assert(c.index && *c.index && !strchr(c.index, '/'));
        assert(c.shutdown_timeout >= 0 && c.shutdown_timeout <= 86400);
        assert(c.keepalive.timeout > 0 && c.keepalive.timeout <= 86400);
        assert(c.keepalive.max_requests >= 1 && c.keepalive.max_per_client >= 1);
        assert(c.max_connections >= 1);
        assert(c.limits.header_bytes >= 256 && c.limits.header_bytes <= 1048576);
        assert(c.limits.body_bytes >= 0);
        assert(c.limits.request_timeout > 0 && c.limits.request_timeout <= 86400);
        assert(c.limits.handler_timeout_ms >= 1 && c.limits.handler_timeout_ms <= 86400000);
        assert(c.limits.lua_memory_mb >= 1 && c.limits.lua_memory_mb <= 1048576);
        assert(c.cors.max_age >= 0 && c.cors.max_age <= 86400);
        assert(!(c.cors.enabled && c.cors.credentials) || c.cors.origins);
        assert(!c.fallback || (*c.fallback && *c.fallback != '/'));
        for (int i = 0; i <= LH_ERROR_PAGE_MAX - LH_ERROR_PAGE_MIN; i++)
            assert(!c.error_pages[i] || (*c.error_pages[i] && *c.error_pages[i] != '/'));
        (void)lh_lua_route_count(lua);
        lh_lua_free(lua);
        lh_config_free(&c);
    } else {
        assert(strncmp(err, path, strlen(path)) == 0);
        assert(c.path == NULL && c.docroot == NULL);
    }
    return 0;
}
