#include "kvs/api/status_page.h"

namespace kvs::api {
namespace {

// Kept in one raw string so that the binary serves it with no file to find. Plain DOM code,
// no framework: it only reads /status?scope=cluster (modules/api README "Status endpoint").
constexpr std::string_view kPage = R"KVSPAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>kvs status</title>
<style>
  :root { --fg: #1d2430; --muted: #6b7380; --line: #dfe3ea; --ok: #1f8a4c; --bad: #c23b32;
          --warn: #b7791f; --bg: #f7f8fa; --card: #fff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 24px; align-items: baseline; padding: 14px 24px;
           background: var(--card); border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: var(--muted); }
  main { padding: 16px 24px; display: grid; gap: 16px;
         grid-template-columns: minmax(260px, 320px) 1fr; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
          padding: 12px 16px; }
  .card h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em;
             color: var(--muted); margin: 0 0 8px; }
  .wide { grid-column: 1 / -1; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
           white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .pill { display: inline-block; padding: 0 8px; border-radius: 9px; font-size: 12px;
          color: #fff; background: var(--muted); }
  .pill.ok { background: var(--ok); } .pill.bad { background: var(--bad); }
  .pill.warn { background: var(--warn); }
  #error { display: none; background: #fdecea; color: var(--bad); padding: 8px 24px;
           border-bottom: 1px solid #f5c2bd; }
  #error.shown { display: block; }
  .shards { display: flex; gap: 12px; flex-wrap: wrap; }
  .shard { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
           min-width: 200px; border-top: 4px solid var(--c, var(--muted)); }
  .shard h3 { margin: 0 0 4px; font-size: 14px; }
  .shard ul { margin: 0; padding-left: 18px; }
  .bar { height: 10px; background: var(--line); border-radius: 5px; overflow: hidden; }
  .bar > div { height: 100%; background: var(--ok); width: 0; transition: width .3s; }
  svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
  .muted { color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>kvs</h1>
  <span class="meta">via <b id="via">…</b></span>
  <span class="meta">epoch <b id="epoch">…</b></span>
  <span class="meta"><b id="node-count">…</b> nodes, <b id="shard-count">…</b> shards,
    <b id="key-count">…</b> keys</span>
  <span class="meta"><b id="rps">…</b> req/s</span>
  <span class="meta">updated <span id="updated">never</span></span>
</header>
<div id="error" role="alert"></div>
<main>
  <section class="card">
    <h2>Ring</h2>
    <svg id="ring" viewBox="-40 -8 280 216" width="100%" role="img" aria-label="hash ring"></svg>
  </section>
  <section class="card">
    <h2>Shards</h2>
    <div id="shards" class="shards"></div>
    <div id="operation" hidden>
      <h2 style="margin-top:12px">Operation</h2>
      <div id="operation-text"></div>
      <div class="bar"><div id="operation-bar"></div></div>
    </div>
  </section>
  <section class="card wide">
    <h2>Members</h2>
    <table>
      <thead><tr><th>node</th><th>shard</th><th>up</th><th>seen alive by</th><th>ready</th>
        <th class="num">keys</th><th class="num">epoch</th><th class="num">uptime</th>
        <th class="num">req/s</th><th class="num">p50 ms</th><th class="num">p99 ms</th>
        <th>storage</th></tr></thead>
      <tbody id="members"></tbody>
    </table>
  </section>
  <section class="card">
    <h2>Requests per second</h2>
    <svg id="rps-chart" viewBox="0 0 300 100" width="100%" preserveAspectRatio="none"
         role="img" aria-label="requests per second, last two minutes"></svg>
    <div class="muted" id="rps-range"></div>
  </section>
  <section class="card">
    <h2>Replication</h2>
    <table>
      <thead><tr><th>from</th><th>to</th><th class="num">queued</th>
        <th class="num">oldest</th></tr></thead>
      <tbody id="replication"></tbody>
    </table>
    <p class="muted" id="anti-entropy"></p>
  </section>
</main>
<script>
"use strict";
(function () {
  const COLORS = ["#3b6fd8", "#d8703b", "#2f9e6e", "#9b4dca", "#c9a227", "#d34f7a", "#4aa3b5",
                  "#7a8a2e"];
  const history = [];
  const HISTORY_MAX = 120;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }
  function pill(text, kind) { return el("span", {class: "pill " + kind, text: text}); }
  function duration(seconds) {
    if (typeof seconds !== "number") return "–";
    if (seconds < 60) return seconds.toFixed(0) + " s";
    if (seconds < 3600) return (seconds / 60).toFixed(0) + " min";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }
  function bytes(n) {
    if (typeof n !== "number") return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }
  function fixed(n, digits) { return typeof n === "number" ? n.toFixed(digits) : "–"; }
  function shardColor(id) { return COLORS[((id % COLORS.length) + COLORS.length) % COLORS.length]; }

  // Who sees whom alive: address -> [alive votes, reporters].
  function aliveVotes(nodes) {
    const votes = new Map();
    for (const n of nodes) {
      if (n.error || !Array.isArray(n.peers)) continue;
      for (const p of n.peers) {
        const v = votes.get(p.address) || [0, 0];
        v[0] += p.alive ? 1 : 0;
        v[1] += 1;
        votes.set(p.address, v);
      }
    }
    return votes;
  }

  function drawRing(shards, keysByShard) {
    const ring = $("ring");
    ring.replaceChildren();
    const cx = 100, cy = 100, r = 70;
    ring.appendChild(svg("circle", {cx, cy, r, fill: "none", stroke: "#dfe3ea", "stroke-width": 18}));
    const n = shards.length;
    shards.forEach((shard, i) => {
      const a0 = (i / n) * 2 * Math.PI - Math.PI / 2, a1 = ((i + 1) / n) * 2 * Math.PI - Math.PI / 2;
      const large = a1 - a0 > Math.PI ? 1 : 0;
      const p = (a) => (cx + r * Math.cos(a)).toFixed(2) + " " + (cy + r * Math.sin(a)).toFixed(2);
      const d = n === 1 ? `M ${cx} ${cy - r} A ${r} ${r} 0 1 1 ${cx - 0.01} ${cy - r}`
                        : `M ${p(a0 + 0.02)} A ${r} ${r} 0 ${large} 1 ${p(a1 - 0.02)}`;
      ring.appendChild(svg("path", {d, fill: "none", stroke: shardColor(shard["shard-id"]),
                                    "stroke-width": 18, "data-shard-id": shard["shard-id"]}));
      const mid = (a0 + a1) / 2;
      const label = svg("text", {x: (cx + (r + 22) * Math.cos(mid)).toFixed(1),
                                 y: (cy + (r + 22) * Math.sin(mid) + 4).toFixed(1),
                                 "text-anchor": "middle"});
      label.textContent = "shard " + shard["shard-id"];
      ring.appendChild(label);
    });
    const total = svg("text", {x: cx, y: cy + 4, "text-anchor": "middle"});
    let sum = 0;
    for (const v of keysByShard.values()) sum += v;
    total.textContent = sum + " keys";
    ring.appendChild(total);
  }

  function drawShards(shards, byAddress, keysByShard) {
    const box = $("shards");
    box.replaceChildren();
    for (const shard of shards) {
      const id = shard["shard-id"];
      const items = shard.members.map((m) => {
        const n = byAddress.get(m);
        const ok = n && !n.error;
        return el("li", {}, [el("span", {text: m + " "}),
                             pill(ok ? (n.ready ? "ready" : "not ready") : "down",
                                  ok ? (n.ready ? "ok" : "warn") : "bad")]);
      });
      box.appendChild(el("div", {class: "shard", style: "--c:" + shardColor(id),
                                 "data-shard-id": id, "data-members": shard.members.join(","),
                                 "data-keys": keysByShard.get(id) || 0}, [
        el("h3", {text: "shard " + id}),
        el("div", {class: "muted", text: (keysByShard.get(id) || 0) + " keys, " +
                                         shard.members.length + " replicas"}),
        el("ul", {}, items)]));
    }
  }

  function drawMembers(nodes, votes) {
    const body = $("members");
    body.replaceChildren();
    for (const n of nodes) {
      const v = votes.get(n.address) || [0, 0];
      if (n.error) {
        body.appendChild(el("tr", {"data-node": n.address, "data-up": "false"}, [
          el("td", {text: n.address}), el("td", {text: "–"}), el("td", {}, [pill("down", "bad")]),
          el("td", {text: v[0] + "/" + v[1]}),
          el("td", {colspan: 8, class: "muted", text: n.error})]));
        continue;
      }
      const t = n.traffic || {};
      const lat = t["latency-ms"] || {};
      const storage = n.storage || {};
      body.appendChild(el("tr", {"data-node": n.address, "data-shard": n["shard-id"],
                                 "data-keys": n.keys, "data-up": "true", "data-ready": n.ready}, [
        el("td", {text: n.address}),
        el("td", {text: n["shard-id"] === null ? "–" : n["shard-id"]}),
        el("td", {}, [pill("up", "ok")]),
        el("td", {text: v[0] + "/" + v[1]}),
        el("td", {}, [pill(n.ready ? "ready" : "not ready", n.ready ? "ok" : "warn")]),
        el("td", {class: "num", text: n.keys}),
        el("td", {class: "num", text: n.epoch}),
        el("td", {class: "num", text: duration(n["uptime-s"])}),
        el("td", {class: "num", text: fixed(t["requests-per-s"], 1)}),
        el("td", {class: "num", text: fixed(lat.p50, 2)}),
        el("td", {class: "num", text: fixed(lat.p99, 2)}),
        el("td", {text: storage.mode === "disk" ? bytes(storage.bytes) + " in " + storage.dir
                                                : (storage.mode || "–")})]));
    }
  }

  function drawReplication(nodes) {
    const body = $("replication");
    body.replaceChildren();
    let lastRepair = null, repaired = 0;
    for (const n of nodes) {
      if (n.error) continue;
      for (const r of n.replication || []) {
        body.appendChild(el("tr", {"data-from": n.address, "data-to": r.peer}, [
          el("td", {text: n.address}), el("td", {text: r.peer}),
          el("td", {class: "num", text: r.queued}),
          el("td", {class: "num", text: (r["oldest-age-ms"] || 0) + " ms"})]));
      }
      const ae = n["anti-entropy"] || {};
      repaired += ae["repaired-total"] || 0;
      const age = ae["last-repair-age-ms"];
      if (typeof age === "number" && (lastRepair === null || age < lastRepair)) lastRepair = age;
    }
    $("anti-entropy").textContent = "anti-entropy: " +
        (lastRepair === null ? "no repair yet" : "last repair " + (lastRepair / 1000).toFixed(0) +
         " s ago") + ", " + repaired + " entries repaired in all";
  }

  function drawTraffic(nodes) {
    let rps = 0;
    for (const n of nodes) if (!n.error && n.traffic) rps += n.traffic["requests-per-s"] || 0;
    $("rps").textContent = rps.toFixed(1);
    history.push(rps);
    if (history.length > HISTORY_MAX) history.shift();
    const chart = $("rps-chart");
    chart.replaceChildren();
    const max = Math.max(1, ...history);
    const step = 300 / (HISTORY_MAX - 1);
    const points = history.map((v, i) =>
        ((HISTORY_MAX - history.length + i) * step).toFixed(1) + "," + (98 - (v / max) * 94).toFixed(1));
    chart.appendChild(svg("polyline", {points: points.join(" "), fill: "none",
                                       stroke: "#3b6fd8", "stroke-width": 1.5}));
    $("rps-range").textContent = "peak " + max.toFixed(1) + " req/s over the last " +
                                 history.length + " s";
  }

  function drawOperation(nodes) {
    const op = nodes.map((n) => !n.error && n.operation).find((o) => o);
    $("operation").hidden = !op;
    if (!op) return;
    const total = op.total || 0, done = op.done || 0;
    const share = total > 0 ? Math.min(1, done / total) : 0;
    $("operation-text").textContent = op.kind + ": " + op.phase + ", " + done + "/" + total +
                                      " (" + ((op["age-ms"] || 0) / 1000).toFixed(1) + " s)";
    $("operation-bar").style.width = (share * 100).toFixed(1) + "%";
  }

  function render(status) {
    const nodes = Array.isArray(status.nodes) ? status.nodes : [];
    const byAddress = new Map(nodes.map((n) => [n.address, n]));
    const source = nodes.find((n) => !n.error && Array.isArray(n.shards));
    const shards = source ? source.shards : [];
    const keysByShard = new Map();
    for (const n of nodes) {
      if (n.error || n["shard-id"] === null || n["shard-id"] === undefined) continue;
      keysByShard.set(n["shard-id"], Math.max(keysByShard.get(n["shard-id"]) || 0, n.keys || 0));
    }
    $("via").textContent = status.via || "?";
    $("epoch").textContent = status.epoch === undefined ? "?" : status.epoch;
    $("node-count").textContent = nodes.length;
    $("shard-count").textContent = shards.length;
    let keys = 0;
    for (const v of keysByShard.values()) keys += v;
    $("key-count").textContent = keys;
    drawRing(shards, keysByShard);
    drawShards(shards, byAddress, keysByShard);
    drawMembers(nodes, aliveVotes(nodes));
    drawReplication(nodes);
    drawTraffic(nodes);
    drawOperation(nodes);
    $("updated").textContent = new Date().toLocaleTimeString();
  }

  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.classList.toggle("shown", text !== "");
  }

  async function poll() {
    try {
      const answer = await fetch("/status?scope=cluster", {cache: "no-store"});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      render(await answer.json());
      showError("");
    } catch (e) {
      showError("Cannot read /status from this node: " + (e && e.message ? e.message : e) +
                " (retrying every second)");
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
</script>
</body>
</html>
)KVSPAGE";

}  // namespace

std::string_view StatusPageHtml() { return kPage; }

}  // namespace kvs::api
