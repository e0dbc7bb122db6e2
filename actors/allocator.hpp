#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

/// The process's allocator, as far as the orchestrator needs to know it
/// (CMake's RECUR_ALLOCATOR: gperftools' tcmalloc by default, or glibc's
/// malloc). Plain functions, no CAF: safe to include anywhere.
namespace recur {

/// The allocator's name: "tcmalloc" or "glibc".
const char* allocator_name();

/// Hands the memory the allocator holds free back to the operating system,
/// so that RSS falls after many objects were freed (passivated actors).
/// tcmalloc keeps freed pages in its page heap until told to; glibc's
/// counterpart is malloc_trim(0). Costs a walk over the free pages: call it
/// after a burst of frees, not per free.
void release_free_memory();

/// Bytes handed out by the allocator and not freed yet (the live heap), if
/// the allocator can tell.
std::optional<std::size_t> heap_allocated_bytes();

/// Diagnostic only (renewal_bench --pretouch-mb): takes `bytes` from the
/// system in 1 MiB blocks, writes every page, frees them to tcmalloc's page
/// heap and stops tcmalloc from handing free pages back on its own, so that
/// what is allocated afterwards lands on pages already mapped. It separates
/// the cost of first-touch page faults from the rest of a run; RSS stays
/// up, so nothing else calls it. A no-op with glibc's malloc.
void pretouch_heap(std::size_t bytes);

/// Whether the heap takes its memory as transparent huge pages (see
/// allocator.cpp): forced by RECUR_HUGEPAGES=1/0, else undecided until the
/// heap has taken 64 MiB from the system, then on or off by a probe of the
/// host's page-fault costs. Always off with glibc's malloc.
enum class huge_pages_mode { undecided, on, off, forced_on, forced_off };
const char* to_string(huge_pages_mode m);
huge_pages_mode huge_pages();

/// The probe's figures (zero until it ran): the fastest of three rounds.
struct huge_page_probe {
  std::int64_t small_fault_ns = 0; // per 4 KiB page
  std::int64_t huge_fault_ns = 0;  // per 2 MiB page
};
huge_page_probe huge_pages_probe();

/// The probe's rule: huge pages when a 4 KiB fault costs more than 2 µs
/// (a guest whose every fault traps to the hypervisor) and 512 of them more
/// than four huge ones.
bool huge_pages_pay(const huge_page_probe& p);

} // namespace recur
