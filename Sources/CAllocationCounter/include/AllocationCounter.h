#ifndef TARIFF_ALLOCATION_COUNTER_H
#define TARIFF_ALLOCATION_COUNTER_H
#include <stdint.h>
/// Heap allocations (malloc, calloc, realloc) made by this process while counting was on.
/// `tariff bench` reads it around the measured loop to prove pricing allocates nothing.
uint64_t tariff_allocation_count(void);
/// Turns counting on (non-zero) or off (0, the default): only the measured loops pay for it.
void tariff_allocation_counting(int enabled);
#endif
