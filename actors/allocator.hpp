#pragma once

#include <cstddef>
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

} // namespace recur
