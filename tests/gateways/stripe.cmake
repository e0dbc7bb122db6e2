# Stripe: signatures (against OpenSSL's HMAC and a fixed vector), event
# parsing, and the REST adapter against a fake Stripe on a loopback socket
# (plain HTTP, and TLS with a self-signed certificate made by the test).
recur_test(gateways_stripe_test LABEL unit
  SOURCES
    webhook_signature_test.cpp
    stripe_events_test.cpp
    stripe_gateway_test.cpp
  DEPS
    recur::gateways_stripe
    OpenSSL::Crypto
    OpenSSL::SSL
    Boost::boost
    nlohmann_json::nlohmann_json
    Threads::Threads
)
