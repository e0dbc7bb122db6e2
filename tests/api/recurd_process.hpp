#pragma once
/// Test helpers for talking to a spawned recurd: the child process (killed
/// with the test), a free loopback port, and a small blocking HTTP/1.1
/// client over a real TCP socket.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace recur::apitest {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// A child process whose output goes to a temp file; the destructor kills
/// it, so no test leaks a process even when it fails.
class child_process {
public:
  using env_list = std::vector<std::pair<std::string, std::string>>;

  child_process(const std::string& path, const std::vector<std::string>& args,
                const env_list& env) {
    char log[] = "/tmp/recurd_apitest.XXXXXX";
    const int log_fd = mkstemp(log);
    log_path_ = log;
    pid_ = fork();
    if (pid_ == 0)
      exec_child(path, log_fd, args, env);
    close(log_fd);
  }

  ~child_process() {
    if (!exit_code_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    unlink(log_path_.c_str());
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The exit code (128 + n when killed by signal n), or nullopt on timeout.
  std::optional<int> wait_for_exit(steady::duration timeout) {
    const auto deadline = steady::now() + timeout;
    while (!poll_exit() && steady::now() < deadline)
      std::this_thread::sleep_for(10ms);
    return exit_code_;
  }

  bool running() { return !poll_exit(); }

  std::optional<int> terminate() {
    if (!poll_exit())
      kill(pid_, SIGTERM);
    if (auto code = wait_for_exit(10s))
      return code;
    kill(pid_, SIGKILL);
    return std::nullopt;
  }

  std::string log() const {
    std::ifstream in{log_path_};
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

private:
  [[noreturn]] static void exec_child(const std::string& path, int log_fd,
                                      const std::vector<std::string>& args,
                                      const env_list& env) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); // die with the test, never linger
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    for (const char* name :
         {"RECUR_DB", "RECUR_LISTEN", "RECUR_KAFKA", "RECUR_ADMIN_KEY",
          "RECUR_RATE_LIMIT", "RECUR_RATE_BURST"})
      unsetenv(name);
    for (const auto& [name, value] : env)
      setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const auto& arg : args)
      argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }

  bool poll_exit() {
    if (exit_code_)
      return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_)
      return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                   : 128 + WTERMSIG(status);
    return true;
  }

  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

inline std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct http_reply {
  int status = 0;
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
  nlohmann::json json() const {
    return nlohmann::json::parse(body, nullptr, false);
  }
};

/// One TCP connection; replies are Content-Length framed.
class http_connection {
public:
  explicit http_connection(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{10, 0}; // a hung server fails the test, not the suite
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr)
                 == 0;
  }
  ~http_connection() { close(fd_); }
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  bool connected() const { return connected_; }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  std::optional<http_reply> read_reply() {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill())
        return std::nullopt;
    http_reply reply;
    std::istringstream head{buffer_.substr(0, header_end)};
    std::string line;
    std::getline(head, line);
    std::istringstream status_line{line};
    std::string version;
    status_line >> version >> reply.status;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos)
        continue;
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[lower(line.substr(0, colon))] = value;
    }
    const auto cl = reply.header("content-length");
    const auto length = std::stoul(cl.empty() ? "0" : cl);
    buffer_.erase(0, header_end + 4);
    while (buffer_.size() < length)
      if (!fill())
        return std::nullopt;
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  /// True when the server closed the connection (EOF) with nothing more sent.
  bool closed_by_peer() {
    return buffer_.empty() && !fill() && last_read_ == 0;
  }

private:
  bool fill() {
    char chunk[16384];
    last_read_ = recv(fd_, chunk, sizeof chunk, 0);
    if (last_read_ <= 0)
      return false;
    buffer_.append(chunk, static_cast<std::size_t>(last_read_));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
  ssize_t last_read_ = -1;
};

/// A request's text: Host and Content-Length added; a JSON Content-Type when
/// there is a body and `headers` names none.
inline std::string
raw_request(const std::string& method, const std::string& target,
            const std::string& body,
            const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    out += k + ": " + v + "\r\n";
    has_type = has_type || lower(k) == "content-type";
  }
  if (!body.empty() && !has_type)
    out += "Content-Type: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return out + "\r\n" + body;
}

/// Waits (bounded) until a spawned server accepts connections on `port`;
/// false when it exited or the time ran out.
inline bool wait_listening(child_process& p, std::uint16_t port,
                           steady::duration timeout = 20s) {
  const auto deadline = steady::now() + timeout;
  while (steady::now() < deadline && p.running()) {
    if (http_connection{port}.connected())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// Spawns `path` with `args_for(port)` on a free loopback port and waits
/// until it accepts connections; another port is tried when the chosen one
/// was taken between free_port() and the server's bind ("in use" in its
/// log). On success `process` and `port` hold the running server.
inline testing::AssertionResult
spawn_listening(const std::string& path,
                const std::function<std::vector<std::string>(std::uint16_t)>&
                  args_for,
                const child_process::env_list& env,
                std::unique_ptr<child_process>& process, std::uint16_t& port,
                steady::duration timeout = 20s) {
  std::string last_log;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto p = free_port();
    process = std::make_unique<child_process>(path, args_for(p), env);
    if (wait_listening(*process, p, timeout)) {
      port = p;
      return testing::AssertionSuccess();
    }
    last_log = process->log();
    if (last_log.find("in use") == std::string::npos)
      break;
  }
  return testing::AssertionFailure() << path << " did not start:\n"
                                     << last_log;
}

/// One request on a fresh connection with `Authorization: Bearer <bearer>`
/// (none when empty); nullopt when the server could not be reached or did
/// not answer.
inline std::optional<http_reply>
try_request(std::uint16_t port, const std::string& method,
            const std::string& target, const std::string& bearer,
            const std::string& body = {},
            std::vector<std::pair<std::string, std::string>> headers = {}) {
  if (port == 0)
    return std::nullopt;
  if (!bearer.empty())
    headers.emplace_back("Authorization", "Bearer " + bearer);
  http_connection conn{port};
  if (!conn.connected()
      || !conn.send_all(raw_request(method, target, body, headers)))
    return std::nullopt;
  return conn.read_reply();
}

/// try_request that fails the test when no answer came (an empty reply,
/// status 0, then).
inline http_reply
request(std::uint16_t port, const std::string& method,
        const std::string& target, const std::string& bearer,
        const std::string& body = {},
        std::vector<std::pair<std::string, std::string>> headers = {}) {
  auto reply = try_request(port, method, target, bearer, body,
                           std::move(headers));
  EXPECT_TRUE(reply) << method << " " << target << " got no reply";
  return reply.value_or(http_reply{});
}

} // namespace recur::apitest
