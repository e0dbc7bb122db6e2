#pragma once
/// What the billing route files (subscriptions, invoices, sagas, test clock)
/// share: sending a command to a subscription actor and waiting for its
/// reply, and the JSON view of a subscription. Internal to recur::api.

#include <chrono>
#include <optional>
#include <string>

#include "api/json_io.hpp"
#include "api/router.hpp"
#include "api/routes.hpp"
#include "actors/orchestrator.hpp"
#include "sagas/subscription.hpp"

namespace recur::api {

/// How long a route waits for a subscription actor's reply.
inline constexpr std::chrono::milliseconds command_timeout{10'000};

/// 503 when recurd runs without the orchestrator (nullopt: it runs).
std::optional<http_response> require_orchestrator(const services& s);

/// Sends `input` to subscription `id` of the request's tenant and waits for
/// the reply (after the commit). The failure, if any, as an HTTP response.
struct command_outcome {
  std::optional<http_response> failure;
  subscription_state state;
};
command_outcome run_command(services& s, const request_context& ctx,
                            const subscription_id& id,
                            subscription_input input);

/// The public JSON of a subscription.
ordered_json subscription_view(const subscription_state& st);
ordered_json subscription_schema();

/// 1..max_bytes printable ASCII without spaces: saga ids ("sub_1/invoice/3")
/// and invoice ids may hold '/', which a client percent-encodes in paths.
bool is_valid_ref(std::string_view s, std::size_t max_bytes = 200);

} // namespace recur::api
