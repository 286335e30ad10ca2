#pragma once
/// What a part asks of a server before it is built (data sources, network kinds), checked against
/// the server's limits (server/work_limits.h).

#include <string>

namespace prunegym {

/// One quantity a server bounds: the config key it comes from, its value and the limit that
/// applies ("samples", "features", "graph_nodes", "network_width", ...).
struct WorkItem {
  std::string key;
  double value = 0.0;
  std::string limit;
};

}  // namespace prunegym
