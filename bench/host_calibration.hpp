#pragma once
/// A reading of the host the benchmark runs on, printed beside its figures:
/// the cost of one random load from memory far beyond the caches. The
/// renewal run is bound by such loads (a saga's rows are spread over a heap
/// of a gigabyte), and the VMs these benchmarks run on differ by 3× in it
/// from one session to the next (bench/RESULTS.md), so a figure without it
/// cannot be compared with one from another host.
///
/// The memory is mapped and unmapped here, outside the allocator, so the
/// reading leaves the heap the run starts from as it was.

#include <sys/mman.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

namespace recur::bench {

/// Nanoseconds per dependent load over `bytes` of fresh memory (one 8-byte
/// slot per 64-byte line, visited in one random cycle), or nullopt when the
/// memory could not be mapped.
inline std::optional<double> random_load_ns(std::size_t bytes = 256u << 20,
                                            std::size_t loads = 4'000'000) {
  constexpr std::size_t line = 64 / sizeof(std::uint64_t);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return std::nullopt;
  auto* a = static_cast<std::uint64_t*>(p);
  const std::size_t n = bytes / 64; // lines
  // A random cyclic order of the lines (Sattolo's shuffle, splitmix64):
  // a[line * i] holds the index of the line visited after line i.
  for (std::size_t i = 0; i < n; ++i)
    a[line * i] = i;
  std::uint64_t s = 0x9e3779b97f4a7c15ull;
  auto next = [&s] {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  for (std::size_t i = n - 1; i > 0; --i) {
    const std::size_t j = next() % i; // j < i: one cycle through all
    std::swap(a[line * i], a[line * j]);
  }
  std::uint64_t at = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < loads; ++k)
    at = a[line * at];
  const auto t1 = std::chrono::steady_clock::now();
  // Keep the chase: its result decides nothing but must not be dropped.
  asm volatile("" : : "r"(at) : "memory");
  munmap(p, bytes);
  return std::chrono::duration<double, std::nano>(t1 - t0).count()
         / static_cast<double>(loads);
}

} // namespace recur::bench
