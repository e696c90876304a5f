/* Unit tests for ipkey.c: client addresses as text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

#include "ipkey.h"

/* An IPv4 address as the IPv4-mapped IPv6 key the server builds. */
static struct lh_ipkey ip4(uint32_t n)
{
    struct lh_ipkey k;
    memset(&k, 0, sizeof k);
    k.b[10] = k.b[11] = 0xff;
    memcpy(k.b + 12, &n, 4);
    return k;
}

static void test_format(void **state)
{
    (void)state;
    char out[LH_IP_STRLEN];
    assert_string_equal(lh_ipkey_format(&(struct lh_ipkey){0}, out), "::");
    struct lh_ipkey k = ip4(htonl(0x7f000001));
    assert_string_equal(lh_ipkey_format(&k, out), "127.0.0.1");
    k = ip4(htonl(0));
    assert_string_equal(lh_ipkey_format(&k, out), "0.0.0.0");
    k = ip4(htonl(0xffffffff));
    assert_string_equal(lh_ipkey_format(&k, out), "255.255.255.255");
    k = ip4(htonl(0x0a140309));
    assert_string_equal(lh_ipkey_format(&k, out), "10.20.3.9");
    k = ip4(htonl(0x6463c80a));
    assert_string_equal(lh_ipkey_format(&k, out), "100.99.200.10");
    struct lh_ipkey one = {.b = {[15] = 1}};
    assert_string_equal(lh_ipkey_format(&one, out), "::1");
    struct lh_ipkey full;
    memset(full.b, 0xab, sizeof full.b);
    assert_string_equal(lh_ipkey_format(&full, out),
                        "abab:abab:abab:abab:abab:abab:abab:abab");
    /* every IPv4 octet value, against inet_ntop */
    for (unsigned v = 0; v < 256; v++) {
        char want[16];
        k = ip4(htonl(v << 24 | v << 16 | (255 - v) << 8 | v));
        inet_ntop(AF_INET, k.b + 12, want, sizeof want);
        assert_string_equal(lh_ipkey_format(&k, out), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests_name("ipkey", tests, NULL, NULL);
}
