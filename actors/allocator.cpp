#include "actors/allocator.hpp"

#if defined(RECUR_TCMALLOC)
#  include <sys/mman.h>
#  include <time.h>

#  include <algorithm>
#  include <atomic>
#  include <cstdint>
#  include <cstdlib>
#  include <cstring>
#  include <vector>

#  include <gperftools/malloc_extension.h>
#  include <gperftools/malloc_extension_c.h>
#else
#  include <malloc.h>
#endif

namespace recur {

bool huge_pages_pay(const huge_page_probe& p) {
  return p.small_fault_ns > 2000 && p.small_fault_ns * 512 > 4 * p.huge_fault_ns;
}

const char* to_string(huge_pages_mode m) {
  switch (m) {
  case huge_pages_mode::undecided: return "undecided";
  case huge_pages_mode::on: return "on";
  case huge_pages_mode::off: return "off";
  case huge_pages_mode::forced_on: return "forced_on";
  case huge_pages_mode::forced_off: return "forced_off";
  }
  return "off";
}

#if defined(RECUR_TCMALLOC)

namespace {

/// Whether tcmalloc takes its memory from the system as whole 2 MiB-aligned
/// chunks marked MADV_HUGEPAGE (transparent huge pages; the kernel's THP mode
/// is usually "madvise"), so that a heap growing by gigabytes (the in-memory
/// store) takes one page fault per 2 MiB instead of 512.
///
/// Whether that pays depends on the host, and measured both ways
/// (bench/RESULTS.md, "Huge pages again, …" and "Huge pages chosen by a
/// probe"): on a PVM guest a 4 KiB fault costs about 10 µs, and huge pages
/// took a quarter off the renewal benchmark's CPU; on a Firecracker/KVM
/// guest with free page reporting, where 4 KiB faults are cheap and each
/// huge one zeroes 2 MiB the host must back first, under whatever lock the
/// faulting thread holds, they added a third. So by default the process
/// decides for itself, once its heap has taken 64 MiB from the system (a
/// small process never pays for the probe): it times 512 faults of 4 KiB
/// pages against one of a 2 MiB page, three times on fresh mappings, and
/// turns huge pages on only when the fastest 4 KiB round costs more than
/// 2 µs a page and four times the fastest huge one. RECUR_HUGEPAGES=1 or 0
/// forces the choice. Memory freed back with release_free_memory() is still
/// returned (MADV_DONTNEED splits a huge page).
class page_allocator final : public SysAllocator {
public:
  static constexpr std::size_t huge = std::size_t{2} << 20;
  static constexpr std::size_t probe_after = std::size_t{64} << 20;

  page_allocator(SysAllocator* fallback, huge_pages_mode mode)
    : fallback_(fallback), mode_(mode) {}

  void* Alloc(std::size_t size, std::size_t* actual_size,
              std::size_t alignment) override {
    // tcmalloc calls this under its page-heap lock: one caller at a time.
    auto mode = mode_.load(std::memory_order_relaxed);
    if (mode == huge_pages_mode::undecided && taken_ >= probe_after) {
      mode = probe();
      mode_.store(mode, std::memory_order_release); // after probe_'s figures
    }
    if (mode != huge_pages_mode::on && mode != huge_pages_mode::forced_on)
      return plain(size, actual_size, alignment);
    const std::size_t rounded = (size + huge - 1) / huge * huge;
    std::size_t got = 0;
    void* p = fallback_->Alloc(rounded, &got, alignment < huge ? huge : alignment);
    if (p == nullptr) // e.g. no 2 MiB-aligned room: the plain request
      return plain(size, actual_size, alignment);
    madvise(p, got, MADV_HUGEPAGE); // advice only: failure changes nothing
    taken_ += got;
    if (actual_size != nullptr)
      *actual_size = got;
    return p;
  }

  /// Read from any thread; the figures are final once the mode is decided.
  huge_pages_mode mode() const noexcept {
    return mode_.load(std::memory_order_acquire);
  }
  const huge_page_probe& figures() const noexcept { return probe_; }

private:
  void* plain(std::size_t size, std::size_t* actual_size, std::size_t alignment) {
    std::size_t got = 0;
    void* p = fallback_->Alloc(size, &got, alignment);
    if (p != nullptr)
      taken_ += got;
    if (actual_size != nullptr)
      *actual_size = got;
    return p;
  }

  static double now_us() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) * 1e6
           + static_cast<double>(t.tv_nsec) * 1e-3;
  }

  /// One round: the time to fault 2 MiB of fresh 4 KiB pages, and one fresh
  /// 2 MiB page. Calls no allocator (it runs inside one).
  static bool probe_round(double& small_us, double& huge_us) {
    void* a = mmap(nullptr, huge, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* m = mmap(nullptr, 2 * huge, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok = a != MAP_FAILED && m != MAP_FAILED;
    if (ok) {
      auto* small = static_cast<volatile char*>(a);
      auto* big = reinterpret_cast<volatile char*>(
        (reinterpret_cast<std::uintptr_t>(m) + huge - 1) & ~(huge - 1));
      ok = madvise(a, huge, MADV_NOHUGEPAGE) == 0
           && madvise(const_cast<char*>(big), huge, MADV_HUGEPAGE) == 0;
      if (ok) {
        const double t0 = now_us();
        for (std::size_t i = 0; i < huge; i += 4096)
          small[i] = 1;
        const double t1 = now_us();
        for (std::size_t i = 0; i < huge; i += 4096)
          big[i] = 1;
        const double t2 = now_us();
        small_us = t1 - t0;
        huge_us = t2 - t1;
      }
    }
    if (a != MAP_FAILED)
      munmap(a, huge);
    if (m != MAP_FAILED)
      munmap(m, 2 * huge);
    return ok;
  }

  huge_pages_mode probe() {
    double best_small = 1e300, best_huge = 1e300;
    for (int round = 0; round < 3; ++round) {
      double s = 0, h = 0;
      if (!probe_round(s, h))
        return huge_pages_mode::off; // no THP here (or no memory to try)
      best_small = std::min(best_small, s);
      best_huge = std::min(best_huge, h);
    }
    probe_.small_fault_ns = static_cast<std::int64_t>(best_small * 1000.0 / 512.0);
    probe_.huge_fault_ns = static_cast<std::int64_t>(best_huge * 1000.0);
    return huge_pages_pay(probe_) ? huge_pages_mode::on : huge_pages_mode::off;
  }

  SysAllocator* fallback_;
  std::atomic<huge_pages_mode> mode_;
  std::size_t taken_ = 0; // under tcmalloc's lock
  huge_page_probe probe_{};
};

huge_pages_mode mode_from_env() {
  const char* v = std::getenv("RECUR_HUGEPAGES");
  if (v != nullptr && std::strcmp(v, "1") == 0)
    return huge_pages_mode::forced_on;
  if (v != nullptr && std::strcmp(v, "0") == 0)
    return huge_pages_mode::forced_off;
  return huge_pages_mode::undecided;
}

/// Installed before main (tcmalloc is initialised by then: this runs after
/// the allocations of earlier static constructors).
page_allocator* const installed = [] {
  auto* ext = MallocExtension::instance();
  static page_allocator alloc{ext->GetSystemAllocator(), mode_from_env()};
  ext->SetSystemAllocator(&alloc);
  return &alloc;
}();

} // namespace

const char* allocator_name() {
  return "tcmalloc";
}

void pretouch_heap(std::size_t bytes) {
  MallocExtension::instance()->SetMemoryReleaseRate(0);
  constexpr std::size_t block = std::size_t{1} << 20;
  std::vector<char*> blocks;
  blocks.reserve(bytes / block);
  for (std::size_t i = 0; i < bytes / block; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(block)));
    if (blocks.back() == nullptr)
      break;
    std::memset(blocks.back(), 0, block);
  }
  for (char* b : blocks)
    std::free(b);
}

huge_pages_mode huge_pages() {
  return installed != nullptr ? installed->mode() : mode_from_env();
}

huge_page_probe huge_pages_probe() {
  return installed != nullptr ? installed->figures() : huge_page_probe{};
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

void pretouch_heap(std::size_t) {}

huge_pages_mode huge_pages() {
  return huge_pages_mode::off;
}

huge_page_probe huge_pages_probe() {
  return {};
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
