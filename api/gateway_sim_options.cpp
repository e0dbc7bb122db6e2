// recur-gateway-sim's command line: one table of flags, each with its
// environment variable, default and setter; --help is printed from it.

#include <array>
#include <charconv>
#include <functional>
#include <map>

#include "api/gateway_sim.hpp"

namespace recur::api {

namespace {

error bad(std::string detail) {
  return make_error(errc::invalid_argument, std::move(detail));
}

result<std::int64_t> parse_number(std::string_view text, std::int64_t min,
                                  std::int64_t max) {
  std::int64_t n = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc{} || ptr != end || n < min || n > max)
    return bad("expected an integer in " + std::to_string(min) + ".."
               + std::to_string(max) + ", got '" + std::string{text} + "'");
  return n;
}

using setter = std::function<status(std::string_view, gateway_sim_options&)>;

struct sim_flag {
  std::string_view name;
  std::string_view env;
  std::string_view arg;
  std::string_view help;
  std::string_view default_text;
  setter set;
};

template <class T>
setter number(std::int64_t min, std::int64_t max,
              std::function<T&(gateway_sim_options&)> slot) {
  return [=](std::string_view v, gateway_sim_options& o) -> status {
    auto n = parse_number(v, min, max);
    if (!n)
      return n.error();
    slot(o) = static_cast<T>(*n);
    return {};
  };
}

setter ppm(std::function<std::uint32_t&(gateway_sim_options&)> slot) {
  return number<std::uint32_t>(0, ppm_max, std::move(slot));
}

setter text(std::function<std::string&(gateway_sim_options&)> slot) {
  return [=](std::string_view v, gateway_sim_options& o) -> status {
    slot(o) = std::string{v};
    return {};
  };
}

const std::vector<sim_flag>& flags() {
  using o = gateway_sim_options;
  static const std::vector<sim_flag> all{
    {"--listen", "RECUR_SIM_LISTEN", "<host:port>",
     "address to serve the Stripe-like API on", "127.0.0.1:12111",
     [](std::string_view v, o& opts) -> status {
       auto a = parse_listen(v);
       if (!a)
         return a.error();
       opts.listen = std::move(*a);
       return {};
     }},
    {"--api-key", "RECUR_SIM_API_KEY", "<key>",
     "the secret key clients send as Bearer (the tenant's api_key)",
     "sk_test_recur_sim",
     text([](o& x) -> std::string& { return x.sim.api_key; })},
    {"--webhook-url", "RECUR_SIM_WEBHOOK_URL", "<url>",
     "where events go; {tenant} is replaced by the charge's tenant",
     "none (events are dropped)",
     text([](o& x) -> std::string& { return x.sim.webhook_url; })},
    {"--webhook-secret", "RECUR_SIM_WEBHOOK_SECRET", "<secret>",
     "endpoint secret the webhooks are signed with (whsec_...)", "none",
     text([](o& x) -> std::string& { return x.sim.webhook_secret; })},
    {"--seed", "RECUR_SIM_SEED", "<n>",
     "seed of the sandbox's fault rates and the webhook faults", "1",
     number<std::uint64_t>(0, INT64_MAX,
                           [](o& x) -> std::uint64_t& { return x.sim.seed; })},
    {"--settle-delay-s", "RECUR_SIM_SETTLE_DELAY_S", "<s>",
     "how long pm_sandbox_async charges take to settle", "10",
     number<std::int64_t>(0, settle_delay_s_max,
                          [](o& x) -> std::int64_t& {
                            return x.sim.sandbox.settle_delay_s;
                          })},
    {"--sync-events", "RECUR_SIM_SYNC_EVENTS", "<true|false>",
     "also send events for outcomes answered at once (as Stripe does)", "true",
     [](std::string_view v, o& opts) -> status {
       if (v != "true" && v != "false")
         return bad("expected true or false, got '" + std::string{v} + "'");
       opts.sim.sandbox.events_for_sync_outcomes = v == "true";
       return {};
     }},
    {"--timeout-ppm", "RECUR_SIM_TIMEOUT_PPM", "<ppm>",
     "charges lost before processing (answered 500)", "0",
     ppm([](o& x) -> std::uint32_t& { return x.sim.sandbox.timeout_ppm; })},
    {"--timeout-after-commit-ppm", "RECUR_SIM_TIMEOUT_AFTER_COMMIT_PPM",
     "<ppm>", "charges processed whose answer is lost (answered 500)", "0",
     ppm([](o& x) -> std::uint32_t& {
       return x.sim.sandbox.timeout_after_commit_ppm;
     })},
    {"--decline-soft-ppm", "RECUR_SIM_DECLINE_SOFT_PPM", "<ppm>",
     "good cards declined processing_error", "0",
     ppm(
       [](o& x) -> std::uint32_t& { return x.sim.sandbox.decline_soft_ppm; })},
    {"--pending-ppm", "RECUR_SIM_PENDING_PPM", "<ppm>",
     "good cards answered processing, settled later", "0",
     ppm([](o& x) -> std::uint32_t& { return x.sim.sandbox.pending_ppm; })},
    {"--duplicate-ppm", "RECUR_SIM_DUPLICATE_PPM", "<ppm>",
     "webhooks delivered twice", "0",
     ppm([](o& x) -> std::uint32_t& { return x.sim.duplicate_ppm; })},
    {"--reorder-ppm", "RECUR_SIM_REORDER_PPM", "<ppm>",
     "webhooks swapped with the next one", "0",
     ppm([](o& x) -> std::uint32_t& { return x.sim.reorder_ppm; })},
    {"--forge-ppm", "RECUR_SIM_FORGE_PPM", "<ppm>",
     "webhooks preceded by a forged copy (must be refused)", "0",
     ppm([](o& x) -> std::uint32_t& { return x.sim.forge_ppm; })},
    {"--delay-s", "RECUR_SIM_DELAY_S", "<s>", "every webhook waits this long",
     "0",
     number<std::int64_t>(0, 30 * seconds_per_day,
                          [](o& x) -> std::int64_t& { return x.sim.delay_s; })},
    {"--delay-jitter-s", "RECUR_SIM_DELAY_JITTER_S", "<s>",
     "plus a seeded 0..this many seconds", "0",
     number<std::int64_t>(0, 30 * seconds_per_day,
                          [](o& x) -> std::int64_t& {
                            return x.sim.delay_jitter_s;
                          })},
    {"--pump-interval-ms", "RECUR_SIM_PUMP_INTERVAL_MS", "<ms>",
     "how often events are polled and webhooks sent", "200",
     [](std::string_view v, o& opts) -> status {
       auto n = parse_number(v, pump_interval_min.count(),
                             pump_interval_max.count());
       if (!n)
         return n.error();
       opts.sim.pump_interval = std::chrono::milliseconds{*n};
       return {};
     }},
  };
  return all;
}

} // namespace

result<gateway_sim_options>
parse_gateway_sim_options(std::span<const std::string_view> args,
                          const env_lookup& env) {
  gateway_sim_options opts;
  opts.sim.sandbox.settle_delay_s = 10;
  for (const auto arg : args) {
    opts.show_help = opts.show_help || arg == "--help" || arg == "-h";
    opts.show_version = opts.show_version || arg == "--version";
  }
  if (opts.show_help || opts.show_version)
    return opts;
  std::map<std::string_view, std::string> given;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    const sim_flag* match = nullptr;
    std::optional<std::string> value;
    for (const auto& f : flags()) {
      if (arg == f.name) {
        match = &f;
        if (i + 1 >= args.size())
          return bad("option " + std::string{f.name} + " needs a value");
        value = std::string{args[++i]};
        break;
      }
      if (arg.starts_with(f.name) && arg.size() > f.name.size()
          && arg[f.name.size()] == '=') {
        match = &f;
        value = std::string{arg.substr(f.name.size() + 1)};
        break;
      }
    }
    if (match == nullptr)
      return bad((arg.starts_with("-") ? "unknown option '"
                                       : "unexpected "
                                         "argument '")
                 + std::string{arg} + "' (see recur-gateway-sim --help)");
    if (value->empty())
      return bad("option " + std::string{match->name} + " must not be empty");
    given.insert_or_assign(match->name, std::move(*value));
  }
  for (const auto& f : flags()) {
    std::string where;
    std::optional<std::string> value;
    if (auto it = given.find(f.name); it != given.end()) {
      value = it->second;
      where = "option " + std::string{f.name} + ": ";
    } else if (auto e = env(f.env); e && !e->empty()) {
      value = std::move(e);
      where = "environment variable " + std::string{f.env} + ": ";
    }
    if (!value)
      continue;
    if (auto st = f.set(*value, opts); !st)
      return bad(where + st.error().detail);
  }
  if (auto st = validate(opts.sim); !st)
    return bad("configuration: " + st.error().detail);
  return opts;
}

std::string gateway_sim_usage() {
  std::string out
    = "Usage: recur-gateway-sim [options]\n"
      "\n"
      "A Stripe-like payment API backed by Recur's sandbox gateway (test\n"
      "payment methods pm_card_*, fault tokens pm_sandbox_*), for running\n"
      "recurd against \"Stripe\" locally: PUT /v1/gateways/stripe\n"
      "{\"api_key\": <--api-key>, \"base_url\": \"http://<--listen>\",\n"
      "\"webhook_secret\": <--webhook-secret>} on the tenant. It settles\n"
      "asynchronous payments later and POSTs signed webhooks to\n"
      "--webhook-url, e.g. http://127.0.0.1:8080/v1/webhooks/stripe/{tenant}.\n"
      "\n"
      "Options (a flag wins over its environment variable):\n";
  for (const auto& f : flags()) {
    std::string head = "  " + std::string{f.name} + " " + std::string{f.arg};
    if (head.size() < 34)
      head.resize(34, ' ');
    else
      head += "\n" + std::string(34, ' ');
    out += head + std::string{f.help} + "\n" + std::string(34, ' ') + "env "
           + std::string{f.env} + "; default " + std::string{f.default_text}
           + "\n";
  }
  out += "  --version                       print the version and exit\n"
         "  -h, --help                      print this help and exit\n"
         "\n"
         "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 start-up failure "
         "(listen address),\n"
         "2 bad command line or configuration.\n";
  return out;
}

} // namespace recur::api
