// The status page every node serves at GET / (issue 13): one self-contained HTML document
// (inline CSS and JavaScript, no external asset, no CDN) that polls GET /status?scope=cluster on
// the node it came from once a second and draws the ring and its shards, the members with
// liveness and readiness, key counts, replication lag, requests per second and latency, and
// the progress of a reshard or add-member while one runs.
//
// The DOM carries what it shows as data-* attributes (a row per node: data-node, data-shard,
// data-keys, data-up, data-ready; a section per shard: data-shard-id, data-members), for
// scripts and for the headless-browser test (tests/cluster/status_page_cluster_test.cc).
#pragma once

#include <string_view>

namespace kvs::api {

// The page, as served: text/html; charset=utf-8.
std::string_view StatusPageHtml();

// The Content-Security-Policy it is served with: nothing but this node, inline code included.
inline constexpr std::string_view kStatusPageCsp =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:";

}  // namespace kvs::api
