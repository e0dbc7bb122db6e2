#pragma once
// A store that forwards every call to an in-memory store it owns: tests
// derive from it and override only the calls they want to hold, fail or
// count (`inner` is the memory store behind it).

#include "persistence/forwarding_store.hpp"
#include "persistence/memory_store.hpp"

namespace recur::testing {

/// Constructed before the forwarding base, so the base's target exists.
struct owned_memory_store {
  memory_store inner;
};

class forwarding_store : public owned_memory_store,
                         public recur::forwarding_store {
public:
  forwarding_store() : recur::forwarding_store(inner) {}
};

} // namespace recur::testing
