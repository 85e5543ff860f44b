#ifndef TARIFF_ALLOCATION_COUNTER_H
#define TARIFF_ALLOCATION_COUNTER_H
#include <stdint.h>
/// Heap allocations (malloc, calloc, realloc) made by this process since it started.
/// `tariff bench` reads it around the measured loop to prove pricing allocates nothing.
uint64_t tariff_allocation_count(void);
#endif
