// Request is header-only (templates); this file holds the non-template helper.

#include "tiercache/redis/command.hpp"

#include <cassert>

namespace tiercache::redis {

std::string encode_command(std::initializer_list<std::string_view> args) {
  assert(args.size() != 0);
  Request request;
  request.push_range(args, std::initializer_list<std::string_view>{});
  return std::string(request.payload());
}

}  // namespace tiercache::redis
