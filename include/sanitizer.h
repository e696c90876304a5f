/* sanitizer.h - LH_ASAN is 1 in builds with AddressSanitizer (gcc or clang). The
 * modules that keep their own pools of memory then take every object from
 * malloc and give it back to free, so that ASan checks each one. */
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

#endif
