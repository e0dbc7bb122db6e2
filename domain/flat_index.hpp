#pragma once
/// An open-addressing index of rows that live elsewhere and do not move
/// (deque elements, map nodes): slots of (hash, row pointer) in a
/// power-of-two array, probed linearly, at most half full. A lookup reads
/// one slot run and compares a key only where the hash matches; growing
/// moves slots, never reads a row. For tables of 10^5 rows, where a
/// node-based std::unordered_map pays two or three cache misses and a
/// division per operation, and a rehash that walks every node.
///
/// `KeyOf` maps a row to its key (a std::string_view into the row, valid
/// while the row lives). Keys are unique; the caller keeps rows alive and
/// unchanged in their key while they are indexed.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace recur {

template <class Row, class KeyOf>
class flat_index {
public:
  std::size_t size() const noexcept { return size_; }

  /// The row with key k, or nullptr.
  Row* find(std::string_view k) const {
    if (slots_.empty())
      return nullptr;
    const std::uint64_t h = hash(k);
    for (std::size_t i = h & mask(); slots_[i].row != nullptr;
         i = (i + 1) & mask())
      if (slots_[i].hash == h && KeyOf{}(*slots_[i].row) == k)
        return slots_[i].row;
    return nullptr;
  }

  bool contains(std::string_view k) const { return find(k) != nullptr; }

  /// Indexes `row` under its key; false (and nothing indexed) when a row
  /// with that key is indexed already.
  bool insert(Row& row) {
    if ((size_ + 1) * 2 > slots_.size())
      grow();
    const std::string_view k = KeyOf{}(row);
    const std::uint64_t h = hash(k);
    std::size_t i = h & mask();
    for (; slots_[i].row != nullptr; i = (i + 1) & mask())
      if (slots_[i].hash == h && KeyOf{}(*slots_[i].row) == k)
        return false;
    slots_[i] = slot{h, &row};
    ++size_;
    return true;
  }

  /// Drops the row with key k from the index; false when there is none.
  bool erase(std::string_view k) {
    if (slots_.empty())
      return false;
    const std::uint64_t h = hash(k);
    std::size_t i = h & mask();
    for (;; i = (i + 1) & mask()) {
      if (slots_[i].row == nullptr)
        return false;
      if (slots_[i].hash == h && KeyOf{}(*slots_[i].row) == k)
        break;
    }
    // Backward-shift deletion: later members of the run move into the hole
    // unless their home slot lies cyclically after it.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask(); slots_[j].row != nullptr;
         j = (j + 1) & mask()) {
      const std::size_t home = slots_[j].hash & mask();
      const bool stays = hole <= j ? (hole < home && home <= j)
                                   : (hole < home || home <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = slot{};
    --size_;
    return true;
  }

private:
  struct slot {
    std::uint64_t hash = 0;
    Row* row = nullptr;
  };

  static std::uint64_t hash(std::string_view k) {
    // std::hash's, mixed so that the low bits (the slot) depend on all.
    auto h = static_cast<std::uint64_t>(std::hash<std::string_view>{}(k));
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 32);
  }

  std::size_t mask() const noexcept { return slots_.size() - 1; }

  void grow() {
    std::vector<slot> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, slot{});
    for (const slot& s : old) {
      if (s.row == nullptr)
        continue;
      std::size_t i = s.hash & mask();
      while (slots_[i].row != nullptr)
        i = (i + 1) & mask();
      slots_[i] = s;
    }
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

} // namespace recur
