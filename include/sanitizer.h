/* sanitizer.h - build switches for checking memory: LH_ASAN and LH_POOLS.
 *
 * LH_ASAN is 1 in builds with AddressSanitizer (gcc or clang).
 *
 * LH_POOLS is 1 when the modules that keep their own pools of memory may use them
 * (conn_mem.c: connection slabs and the spare request buffer; lua_alloc.c: Lua's
 * small blocks). Building with -DLH_NO_POOLS, as make valgrind does, or with ASan makes it
 * 0: every object then comes from malloc/calloc and goes back to free, so that
 * valgrind or ASan sees each one, a use after free included. */
#ifndef LH_SANITIZER_H
#define LH_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__)
#define LH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LH_ASAN 1
#endif
#endif
#ifndef LH_ASAN
#define LH_ASAN 0
#endif

#if defined(LH_NO_POOLS) || LH_ASAN
#define LH_POOLS 0
#else
#define LH_POOLS 1
#endif

#endif
