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
