/* Unit tests for lua_json.c: lua-cjson with arrays that stay arrays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "lua_json.h"
#include "lua_test_util.h"

static int setup(void **state)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "json", lh_luaopen_json, 1);
    lua_pop(L, 1);
    *state = L;
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

static void test_plain_cjson_behaviour_kept(void **state)
{
    lua_State *L = *state;
    check(L, "return json.encode({}) == '{}'");
    check(L, "return json.encode({1, 2, 3}) == '[1,2,3]'");
    check(L, "return json.encode({a = 1}) == '{\"a\":1}'");
    check(L, "return json.encode('x\"y') == '\"x\\\\\"y\"'");
    check(L, "return json.decode('{\"a\":{\"b\":[1,2]}}').a.b[2] == 2");
    check(L, "return json.decode('null') == json.null");
    check(L, "return json.encode({json.null}) == '[null]'");
}

static void test_empty_arrays(void **state)
{
    lua_State *L = *state;
    check(L, "return json.encode(json.empty_array) == '[]'");
    check(L, "return json.encode({}) == '{}'"); /* a plain empty table stays an object */
    check(L, "return json.encode({s = '{}', t = {}}) == '{\"s\":\"{}\",\"t\":{}}' or "
             "json.encode({s = '{}', t = {}}) == '{\"t\":{},\"s\":\"{}\"}'");
    check(L, "return json.encode({a = json.empty_array}) == '{\"a\":[]}'");
    check(L, "return json.encode(json.array({})) == '[]'");
    check(L, "return json.encode({{}, json.array({})}) == '[{},[]]'");
    check(L, "return json.encode({x = {y = {z = json.empty_array}}}) == "
             "'{\"x\":{\"y\":{\"z\":[]}}}'");
    /* json.array returns its argument */
    check(L, "local t = {} return json.array(t) == t and getmetatable(t) == json.array_mt");
}

static void test_round_trips(void **state)
{
    lua_State *L = *state;
    check(L, "return json.encode(json.decode('[]')) == '[]'");
    check(L, "return json.encode(json.decode('[ \\n ]')) == '[]'");
    check(L, "return json.encode(json.decode('{}')) == '{}'");
    check(L, "local v = json.decode('{\"a\":[],\"b\":{}}') "
             "return json.encode(v.a) == '[]' and json.encode(v.b) == '{}'");
    check(L, "return json.encode(json.decode('[[],[[]],{}]')) == '[[],[[]],{}]'");
    /* a decoded non-empty array stays an array when emptied */
    check(L, "local v = json.decode('[1,2]') v[1] = nil v[2] = nil "
             "return json.encode(v) == '[]'");
    check(L, "return getmetatable(json.decode('[1]')) == json.array_mt");
    check(L, "return getmetatable(json.decode('{\"1\":1}')) == nil");
}

static void test_strings_untouched(void **state)
{
    lua_State *L = *state;
    check(L, "return json.decode('{\"s\":\"[]\"}').s == '[]'");
    check(L, "local v = json.decode('{\"s\":\"a\\\\\"[]\",\"t\":[]}') "
             "return v.s == 'a\"[]' and json.encode(v.t) == '[]'");
    check(L, "return json.encode({s = '[]', t = json.empty_array}) == "
             "'{\"s\":\"[]\",\"t\":[]}' or json.encode({s = '[]', t = json.empty_array}) == "
             "'{\"t\":[],\"s\":\"[]\"}'");
    /* the placeholder never leaks */
    check(L, "local s = json.encode({a = json.empty_array, b = {json.empty_array}}) "
             "return not s:find('lh%-empty') and not s:find('\\\\u0001')");
    check(L, "local v = json.decode('[[],[]]') "
             "return type(v[1]) == 'table' and type(v[2]) == 'table' and v[1] ~= v[2]");
}

static void test_errors(void **state)
{
    lua_State *L = *state;
    check_error(L, "return json.decode('{bad')", "json.decode");
    check_error(L, "return json.decode('')", "json.decode");
    check_error(L, "return json.encode({f = print})", "function");
    check_error(L, "return json.array(5)", "table expected");
}

static void test_large(void **state)
{
    lua_State *L = *state;
    check(L, "local t = {} for i = 1, 100000 do t[i] = {i, {}, json.empty_array} end "
             "local s = json.encode(t) local v = json.decode(s) "
             "return #s > 1000000 and #v == 100000 and json.encode(v[7][3]) == '[]' "
             "and json.encode(v[7][2]) == '{}'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_cjson_behaviour_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large, setup, teardown),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
