#include "tiercache/redis/errors.hpp"

namespace tiercache::redis {

namespace {
class RedisCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tiercache.redis"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::kConnection:
        return "connection failed or lost";
      case Errc::kTimeout:
        return "timed out";
      case Errc::kProtocol:
        return "protocol error";
      case Errc::kServerError:
        return "server replied with an error";
      case Errc::kAuth:
        return "authentication failed";
      case Errc::kTls:
        return "TLS failure";
      case Errc::kQueueFull:
        return "request queue full";
      case Errc::kClosed:
        return "client closed";
      case Errc::kInvalidArgument:
        return "invalid argument";
    }
    return "unknown redis client error";
  }
};
}  // namespace

const std::error_category& redis_category() noexcept {
  static const RedisCategory category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), redis_category()}; }

std::string Error::to_string() const {
  std::string s = code.message();
  if (!message.empty()) {
    s += ": ";
    s += message;
  }
  return s;
}

}  // namespace tiercache::redis
