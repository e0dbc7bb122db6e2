#include "actors/allocator.hpp"

#if defined(RECUR_TCMALLOC)
#  include <gperftools/malloc_extension_c.h>
#else
#  include <malloc.h>
#endif

namespace recur {

#if defined(RECUR_TCMALLOC)

const char* allocator_name() {
  return "tcmalloc";
}

void release_free_memory() {
  MallocExtension_ReleaseFreeMemory();
}

std::optional<std::size_t> heap_allocated_bytes() {
  std::size_t n = 0;
  if (MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &n)
      == 0)
    return std::nullopt;
  return n;
}

#else

const char* allocator_name() {
  return "glibc";
}

void release_free_memory() {
  malloc_trim(0);
}

std::optional<std::size_t> heap_allocated_bytes() {
  const auto mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

#endif

} // namespace recur
