#pragma once
/// The production `clock`: the operating system's wall time in whole seconds,
/// created only by the composition root.

#include "domain/clock.hpp"

namespace recur::api {

class system_clock final : public recur::clock {
public:
  instant now() const override;
};

} // namespace recur::api
