// Counts heap allocations by interposing glibc's malloc family, for `tariff bench`: linked only
// into the command line library (TariffCommands) and so into a `tariff` program, never into the
// pricing libraries. Each call is forwarded to glibc's own implementation.
#include "AllocationCounter.h"
#include <stddef.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static _Atomic uint64_t allocations = 0;
/// Counting is off unless a benchmark turns it on around its measured loop: the counter is one
/// cache line every thread's every allocation incremented, so with threads on both cores (a
/// `tariff serve`) each malloc waited for the line to come over from the other core (2.6% of a
/// bench serve profile in this wrapper alone). Off, a malloc only reads a flag no one writes.
static _Atomic int counting = 0;

uint64_t tariff_allocation_count(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }

void tariff_allocation_counting(int enabled) { atomic_store_explicit(&counting, enabled != 0, memory_order_relaxed); }

static inline void count_allocation(void) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *malloc(size_t size) {
    count_allocation();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_allocation();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    count_allocation();
    return __libc_realloc(pointer, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    count_allocation();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return 12; // ENOMEM
    *result = pointer;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_allocation();
    return __libc_memalign(alignment, size);
}
