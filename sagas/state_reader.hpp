#pragma once
/// A fast reader of the subscription state JSON that to_json writes (and of
/// event payloads {"detail":…,"state":…}): one SAX pass into the struct,
/// with no JSON DOM built. Activation reads a state per subscription, and
/// the DOM was most of its cost.
///
/// It either gives exactly what subscription_from_json would (the state,
/// with the same rules: last of duplicate keys wins, unknown keys ignored,
/// integers as nlohmann converts them) or returns false, and the caller
/// takes the DOM path, which then also gives the error.

#include <string_view>

#include "sagas/subscription.hpp"

namespace recur {

/// A state document. false: not read here (maybe malformed); `out` is then
/// left as it was.
bool read_state_fast(std::string_view state_json, subscription_state& out);

/// The "state" member of an event payload. false as above.
bool read_payload_state_fast(std::string_view payload_json,
                             subscription_state& out);

/// subscription_from_json without the fast reader: the reference the tests
/// hold the fast reader to.
result<subscription_state> subscription_from_json_dom(std::string_view text);

} // namespace recur
