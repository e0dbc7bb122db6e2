#include "api/system_clock.hpp"

#include <chrono>

namespace recur::api {

instant system_clock::now() const {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  // Whole seconds, rounded down: an instant never lies in the future.
  const auto s = std::chrono::floor<std::chrono::seconds>(since_epoch);
  return instant{static_cast<std::int64_t>(s.count())};
}

} // namespace recur::api
