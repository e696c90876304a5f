/* Unit tests for router.c: matching, precedence, captures, methods, bad patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "router.h"

/* Records the visits; stops at the handler id `stop_at` (0: never). */
struct rec {
    int ids[16];
    size_t n;
    int stop_at;
    char params[256];
};

static bool record(void *ud, const struct lh_route_match *m)
{
    struct rec *r = ud;
    if (r->n < 16)
        r->ids[r->n++] = m->handler;
    if (m->handler == r->stop_at) {
        size_t o = 0;
        for (size_t i = 0; i < m->nparams; i++)
            o += (size_t)snprintf(r->params + o, sizeof r->params - o, "%s=%.*s;",
                                  m->params[i].name, (int)m->params[i].value_len,
                                  m->params[i].value);
    }
    return m->handler == r->stop_at;
}

static struct lh_router *make(void)
{
    struct lh_router *r = lh_router_new();
    char err[128];
    assert_int_equal(lh_router_add(r, "GET", "/users/:id", 1, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "GET", "/users/me", 2, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "GET", "/users/*", 3, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "*", "/users/:id", 4, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "POST", "/users/:uid/posts/:pid", 5, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "GET", "/", 6, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "PUT", "/only-put", 7, err, sizeof err), 0);
    assert_int_equal(lh_router_add(r, "GET", "/files/*", 8, err, sizeof err), 0);
    return r;
}

static void visit_all(struct lh_router *r, const char *method, const char *path,
                      struct rec *rec)
{
    memset(rec, 0, sizeof *rec);
    lh_router_match(r, method, path, record, rec, NULL, NULL, 0);
}

static void test_precedence(void **state)
{
    struct lh_router *r = make();
    struct rec rec;
    visit_all(r, "GET", "/users/me", &rec);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.ids[0], 2); /* exact beats capture */
    assert_int_equal(rec.ids[1], 1); /* then captures, in declaration order */
    assert_int_equal(rec.ids[2], 4);
    assert_int_equal(rec.ids[3], 3); /* the wildcard last */
    visit_all(r, "GET", "/users/42", &rec);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.ids[0], 1);
    assert_int_equal(rec.ids[1], 4);
    assert_int_equal(rec.ids[2], 3);
    visit_all(r, "GET", "/users/42/x", &rec);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.ids[0], 3);
    lh_router_free(r);
}

static void test_captures_and_stop(void **state)
{
    struct lh_router *r = make();
    struct rec rec = {.stop_at = 5};
    assert_true(lh_router_match(r, "POST", "/users/ann/posts/17", record, &rec, NULL, NULL, 0));
    assert_string_equal(rec.params, "uid=ann;pid=17;");
    memset(&rec, 0, sizeof rec);
    rec.stop_at = 1;
    assert_true(lh_router_match(r, "GET", "/users/a%20b", record, &rec, NULL, NULL, 0));
    assert_string_equal(rec.params, "id=a%20b;");
    assert_int_equal(rec.n, 1); /* stopped at the first */
    lh_router_free(r);
}

static void test_wildcard_rest(void **state)
{
    struct lh_router *r = make();
    struct rec rec = {.stop_at = 8};
    assert_true(lh_router_match(r, "GET", "/files/a/b/c.txt", record, &rec, NULL, NULL, 0));
    assert_string_equal(rec.params, "*=a/b/c.txt;");
    memset(&rec, 0, sizeof rec);
    rec.stop_at = 8;
    assert_true(lh_router_match(r, "GET", "/files", record, &rec, NULL, NULL, 0));
    assert_string_equal(rec.params, "*=;");
    memset(&rec, 0, sizeof rec);
    rec.stop_at = 8;
    assert_true(lh_router_match(r, "GET", "/files/", record, &rec, NULL, NULL, 0));
    assert_string_equal(rec.params, "*=;");
    lh_router_free(r);
}

static void test_methods_and_allow(void **state)
{
    struct lh_router *r = make();
    struct rec rec;
    bool matched;
    char allow[64];
    /* HEAD is answered by GET routes; "*" routes take anything */
    visit_all(r, "HEAD", "/users/42", &rec);
    assert_int_equal(rec.n, 3);
    visit_all(r, "DELETE", "/users/42", &rec);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.ids[0], 4);
    /* only the method is wrong */
    memset(&rec, 0, sizeof rec);
    assert_false(lh_router_match(r, "GET", "/only-put", record, &rec, &matched, allow,
                                 sizeof allow));
    assert_int_equal(rec.n, 0);
    assert_true(matched);
    assert_string_equal(allow, "PUT");
    assert_false(lh_router_match(r, "DELETE", "/users/ann/posts/1", record, &rec, &matched,
                                 allow, sizeof allow));
    assert_true(matched);
    assert_string_equal(allow, "POST, GET, HEAD"); /* in the order tried: exact path first */
    /* nothing at all */
    assert_false(lh_router_match(r, "GET", "/nothing/here", record, &rec, &matched, allow,
                                 sizeof allow));
    assert_false(matched);
    assert_string_equal(allow, "");
    assert_true(lh_router_has_method(r, "PUT", 3));
    assert_false(lh_router_has_method(r, "DELETE", 6));
    assert_false(lh_router_has_method(r, "*", 1));
    lh_router_free(r);
}

static void test_root_and_empty_segments(void **state)
{
    struct lh_router *r = make();
    struct rec rec;
    visit_all(r, "GET", "/", &rec);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.ids[0], 6);
    visit_all(r, "GET", "//users//me/", &rec);
    assert_int_equal(rec.ids[0], 2);
    lh_router_free(r);
}

static void test_bad_patterns(void **state)
{
    static const struct {
        const char *method, *pattern;
    } bad[] = {
        {"GET", "no-slash"}, {"GET", "/a/*/b"}, {"GET", "/a*"},    {"GET", "/:"},
        {"GET", "/:a/:a"},   {"", "/x"},        {"G ET", "/x"},   {"GET", "/*/*"},
    };
    struct lh_router *r = lh_router_new();
    char err[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (lh_router_add(r, bad[i].method, bad[i].pattern, 1, err, sizeof err) != -1)
            fail_msg("accepted %s %s", bad[i].method, bad[i].pattern);
        assert_true(err[0] != '\0');
    }
    char many[256] = "";
    for (int i = 0; i <= LH_ROUTE_MAX_PARAMS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "/:p%d", i);
    assert_int_equal(lh_router_add(r, "GET", many, 1, err, sizeof err), -1);
    assert_int_equal(lh_router_count(r), 0);
    lh_router_free(r);
}

static void test_many_routes(void **state)
{
    struct lh_router *r = lh_router_new();
    char err[128], pat[64], path[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(pat, sizeof pat, "/r%d/:x", i);
        assert_int_equal(lh_router_add(r, "GET", pat, i + 1, err, sizeof err), 0);
    }
    assert_int_equal(lh_router_count(r), 1000);
    for (int i = 0; i < 1000; i += 37) {
        struct rec rec = {.stop_at = i + 1};
        snprintf(path, sizeof path, "/r%d/v%d", i, i);
        assert_true(lh_router_match(r, "GET", path, record, &rec, NULL, NULL, 0));
        assert_int_equal(rec.n, 1); /* the trie went straight there */
        char want[32];
        snprintf(want, sizeof want, "x=v%d;", i);
        assert_string_equal(rec.params, want);
    }
    lh_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),         cmocka_unit_test(test_captures_and_stop),
        cmocka_unit_test(test_wildcard_rest),      cmocka_unit_test(test_methods_and_allow),
        cmocka_unit_test(test_root_and_empty_segments), cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_many_routes),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
