#include "actors/allocator.hpp"

#if defined(RECUR_TCMALLOC)
#  include <sys/mman.h>

#  include <cstdlib>
#  include <cstring>

#  include <gperftools/malloc_extension.h>
#  include <gperftools/malloc_extension_c.h>
#else
#  include <malloc.h>
#endif

namespace recur {

#if defined(RECUR_TCMALLOC)

namespace {

/// tcmalloc's system allocator, asked for whole 2 MiB-aligned huge pages and
/// told that they may be backed by transparent huge pages
/// (madvise(MADV_HUGEPAGE); the kernel's THP mode is usually "madvise").
/// A heap that grows by gigabytes (the in-memory store) then takes one page
/// fault per 2 MiB instead of one per 4 KiB. Whether that pays depends on
/// the host: on one VM (a PVM guest) it took a fifth off the renewal
/// benchmark's CPU; on the next (a Firecracker/KVM guest with free page
/// reporting, where each fault of a huge page zeroes 2 MiB the host must
/// back first, under whatever lock the faulting thread holds) it added a
/// third (bench/RESULTS.md, "Huge pages again, …"). So it is opt-in:
/// RECUR_HUGEPAGES=1 turns it on. Memory freed back with
/// release_free_memory() is still returned (MADV_DONTNEED splits the huge
/// page).
class huge_page_allocator final : public SysAllocator {
public:
  static constexpr std::size_t huge = std::size_t{2} << 20;

  explicit huge_page_allocator(SysAllocator* fallback) : fallback_(fallback) {}

  void* Alloc(std::size_t size, std::size_t* actual_size,
              std::size_t alignment) override {
    const std::size_t rounded = (size + huge - 1) / huge * huge;
    std::size_t got = 0;
    void* p = fallback_->Alloc(rounded, &got, alignment < huge ? huge : alignment);
    if (p == nullptr) // e.g. no 2 MiB-aligned room: the plain request
      return fallback_->Alloc(size, actual_size, alignment);
    madvise(p, got, MADV_HUGEPAGE); // advice only: failure changes nothing
    if (actual_size != nullptr)
      *actual_size = got;
    return p;
  }

private:
  SysAllocator* fallback_;
};

bool huge_pages_wanted() {
  const char* v = std::getenv("RECUR_HUGEPAGES");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

/// Installed before main (tcmalloc is initialised by then: this runs after
/// the allocations of earlier static constructors).
[[maybe_unused]] const bool huge_pages_installed = [] {
  if (!huge_pages_wanted())
    return false;
  auto* ext = MallocExtension::instance();
  static huge_page_allocator alloc{ext->GetSystemAllocator()};
  ext->SetSystemAllocator(&alloc);
  return true;
}();

} // namespace

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
