/* Helpers the randomised unit tests share: a seedable generator and a byte pattern. */
#ifndef LH_TEST_UTIL_H
#define LH_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64; each test file has its own state, and a test that wants a known
 * sequence sets rng_state first (never to 0, which the generator never leaves). */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static inline uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Byte i of the pattern for seed: what a test writes, so that it can check it later. */
static inline uint8_t pattern(uint32_t seed, size_t i)
{
    return (uint8_t)(seed * 2654435761u + i * 31 + (i >> 8));
}

#endif
