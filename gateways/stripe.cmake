# recur::gateways_stripe — Stripe's webhook signatures, its event JSON and the
# REST adapter (PaymentIntents, search, refunds) over Boost.Beast. OpenSSL,
# Beast and nlohmann_json stay behind the .cpp files.
recur_library(gateways_stripe
  SOURCES
    webhook_signature.cpp
    stripe_events.cpp
    stripe_gateway.cpp
  DEPS recur::domain recur::workflows
  PRIVATE_DEPS
    OpenSSL::Crypto
    OpenSSL::SSL
    Boost::boost
    nlohmann_json::nlohmann_json
    spdlog::spdlog
    Threads::Threads
)
# recur::gateways_sandbox_webhooks — the sandbox's webhook sender: its events
# as Stripe-shaped JSON, signed, POSTed to recurd over Beast, with seeded
# duplicates, reordering, delays and forgeries (sandbox_webhooks.hpp).
recur_library(gateways_sandbox_webhooks
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sandbox_webhooks.cpp
  DEPS recur::gateways recur::gateways_stripe recur::domain
  PRIVATE_DEPS Boost::boost nlohmann_json::nlohmann_json spdlog::spdlog
    Threads::Threads
)
