/* main.c - command line -> configuration -> server. */
#include "config.h"
#include "server.h"
#include "static.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: luahttpd [-c FILE] [-p PORT] [-r DOCROOT] [-w WORKERS] [--check] [--dev] [-v] [-h]\n"
    "  -c, --config FILE   config file (default ./config.lua; built-in defaults if absent)\n"
    "  -p, --port PORT     listen on PORT (0 picks a free one)\n"
    "  -r, --root DIR      serve files from DIR\n"
    "  -w, --workers N     worker processes (a number or \"auto\")\n"
    "      --check         validate the configuration and exit\n"
    "      --dev           development mode\n"
    "  -v, --version       print the version and exit\n"
    "  -h, --help          print this help and exit\n";

static int bad_usage(const char *msg, const char *arg)
{
    if (msg)
        fprintf(stderr, "luahttpd: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fputs(usage, stderr);
    return 2;
}

/* A whole decimal number in [lo, hi], or -1. */
static long number(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

/* --check: the same loading path the server uses, plus the docroot. */
static int check(const struct lh_options *o)
{
    char err[1024];
    struct lh_config c = {0};
    if (lh_server_load_config(o, &c, err, sizeof err) < 0) {
        printf("%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < c.nwarnings; i++)
        fprintf(stderr, "warning: %s\n", c.warnings[i]);
    int fd = lh_static_open_root(c.docroot);
    if (fd < 0) {
        printf("docroot %s: %s\n", c.docroot, strerror(errno));
        lh_config_free(&c);
        return 1;
    }
    close(fd);
    lh_config_free(&c);
    printf("config OK\n");
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_DEV };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"port", required_argument, NULL, 'p'},
        {"root", required_argument, NULL, 'r'},   {"workers", required_argument, NULL, 'w'},
        {"check", no_argument, NULL, OPT_CHECK},  {"dev", no_argument, NULL, OPT_DEV},
        {"version", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct lh_options o = {.port = -1};
    bool do_check = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:p:r:w:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o.config_path = optarg;
            break;
        case 'p':
            if ((o.port = (int)number(optarg, 0, 65535)) < 0)
                return bad_usage("bad port", optarg);
            break;
        case 'r':
            o.docroot = optarg;
            break;
        case 'w':
            o.workers = strcmp(optarg, "auto") == 0 ? (int)sysconf(_SC_NPROCESSORS_ONLN)
                                                    : (int)number(optarg, 1, 256);
            if (o.workers < 1)
                return bad_usage("bad worker count", optarg);
            break;
        case OPT_CHECK:
            do_check = true;
            break;
        case OPT_DEV:
            o.dev = true;
            break;
        case 'v':
            printf("luahttpd %s\n", LH_VERSION);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            return bad_usage("missing argument for", argv[optind - 1]);
        default:
            return bad_usage("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument", argv[optind]);
    if (!o.config_path && access("config.lua", F_OK) == 0)
        o.config_path = "config.lua";
    if (do_check)
        return check(&o);

    return lh_server_run(&o);
}
