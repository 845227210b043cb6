// prometheus_check FILE: exit 0 if FILE is valid Prometheus text exposition (format 0.0.4, as
// checked by tests/unit/prometheus_format.hpp, the stand-in for `promtool check metrics`);
// else prints one line per problem on stderr and exits 1 (2: usage, or FILE unreadable).
// Used by run_demo.cmake on the metrics.prom `tiercache demo --report` writes.

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "../unit/prometheus_format.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: prometheus_check FILE\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "prometheus_check: cannot read %s\n", argv[1]);
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::vector<std::string> errors = tiercache::test::prometheus_format_errors(text.str());
  for (const std::string& e : errors) std::fprintf(stderr, "%s: %s\n", argv[1], e.c_str());
  if (text.str().empty()) {
    std::fprintf(stderr, "%s: empty\n", argv[1]);
    return 1;
  }
  return errors.empty() ? 0 : 1;
}
