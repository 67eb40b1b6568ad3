// The demo page: plain JavaScript on the public API (fetch), no build step.
// A shopper (picked or typed) or an anonymous visitor views, carts and buys items; each action is POSTed to
// /v1/events, then the recommendations are re-read every pollIntervalMs for pollDurationS so the speed layer's
// update shows up as soon as it lands; items new to the list or moved are highlighted against the list shown
// before the action.
"use strict";

const config = JSON.parse(document.getElementById("demo-config").textContent);
const KEY_STORE = "recsys-demo-key";
const randomId = () => Math.random().toString(36).slice(2, 10);

const state = {
  shopper: "",                     // "" = an anonymous visitor
  visitor: `visitor-${randomId()}`, // the id an anonymous visitor's events are posted under
  session: `demo-${randomId()}`,
  seen: [],                        // items viewed this session, oldest first (anonymous recommendations)
  recs: [],                        // item ids of the recommendation list shown now
  signature: "",                   // ids and scores of that list: any change counts as "changed"
  cards: new Map(),                // item id -> {category, brand, price}
  poll: 0,                         // id of the running poll; a newer action replaces it
  baseline: null,                  // ids shown before the current burst of actions: what highlights compare with
};

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = {"Content-Type": "application/json", ...(options.headers || {})};
  const key = $("api-key").value.trim();
  if (key) headers[config.keyHeader] = key;
  const response = await fetch(path, {...options, headers});
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const hint = response.status === 401 ? " (enter an API key above)" : "";
    throw new Error(`${path}: ${response.status} ${body.error || ""}${hint}`);
  }
  return body;
}

async function describe(ids) {
  const missing = ids.filter((id) => !state.cards.has(id));
  for (let start = 0; start < missing.length; start += config.maxIds) {
    const chunk = missing.slice(start, start + config.maxIds);
    const body = await api(`/v1/items?ids=${chunk.map(encodeURIComponent).join(",")}`);
    for (const card of body.items) state.cards.set(card.item_id, card);
    for (const id of chunk) if (!state.cards.has(id)) state.cards.set(id, {});
  }
}

function attributes(card) {
  const parts = [card.category, card.brand, card.price == null ? null : `${card.price.toFixed(2)}`];
  return parts.filter((p) => p != null).join(" · ");
}

// Render `items` into the list; with `baseline` (ids shown before), mark items new or moved against it.
async function render(list, items, baseline = null) {
  await describe(items.map((i) => i.item_id));
  const template = $("item-template");
  const rows = items.map((item, rank) => {
    const li = template.content.firstElementChild.cloneNode(true);
    const card = state.cards.get(item.item_id) || {};
    li.dataset.item = item.item_id;
    li.dataset.category = card.category || "";
    li.dataset.score = item.score.toFixed(4);
    li.querySelector(".rank").textContent = `${rank + 1}.`;
    li.querySelector(".item-id").textContent = item.item_id;
    li.querySelector(".item-id").addEventListener("click", () => act("view", item.item_id));
    li.querySelector(".attrs").textContent = `${attributes(card)}  (score ${item.score.toFixed(3)})`;
    for (const reason of item.reasons) {
      const r = document.createElement("li");
      r.textContent = reason;
      li.querySelector(".reasons").append(r);
    }
    for (const button of li.querySelectorAll("button[data-event]")) {
      button.addEventListener("click", () => act(button.dataset.event, item.item_id));
    }
    if (baseline) {
      const before = baseline.indexOf(item.item_id);
      const move = li.querySelector(".move");
      if (before < 0) { li.classList.add("new"); move.textContent = "new"; }
      else if (before > rank) { li.classList.add("up"); move.textContent = `▲${before - rank}`; }
      else if (before < rank) { li.classList.add("down"); move.textContent = `▼${rank - before}`; }
    }
    return li;
  });
  list.replaceChildren(...rows);
}

async function fetchRecommendations() {
  if (state.shopper) {
    return api(`/v1/users/${encodeURIComponent(state.shopper)}/recommendations?k=${config.k}`);
  }
  const seen = state.seen.slice(-config.maxSeenItems);
  return api("/v1/recommendations/anonymous", {method: "POST", body: JSON.stringify({seen_items: seen, k: config.k})});
}

// Read and show the recommendations; returns true when the list differs from the one shown before.
// A reply for a shopper no longer chosen is dropped, so a slow earlier reply cannot overwrite the list.
async function refreshRecommendations(baseline) {
  const shopper = state.shopper;
  const body = await fetchRecommendations();
  if (shopper !== state.shopper) return false;
  const signature = body.items.map((i) => `${i.item_id}:${i.score.toFixed(6)}`).join(",");
  const changed = signature !== state.signature;
  state.signature = signature;
  state.recs = body.items.map((i) => i.item_id);
  $("status-variant").textContent = body.variant || (state.shopper ? "–" : "none (visitor)");
  $("recs-state").textContent = body.degraded ? "(degraded: real-time state unavailable)" : "";
  await render($("recs"), body.items, baseline);
  $("recs").dataset.shopper = shopper;  // whose list is shown ("" = the visitor's)
  return changed;
}

async function refreshTrending() {
  const body = await api(`/v1/trending?k=${config.k}`);
  await render($("trending"), body.items);
}

async function showSimilar(itemId) {
  const body = await api(`/v1/items/${encodeURIComponent(itemId)}/similar?k=${config.k}`);
  $("similar-of").textContent = itemId;
  await render($("similar"), body.items);
}

function logLine(text, error = false) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  if (error) li.classList.add("error");
  $("log").prepend(li);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// After an event: re-read the recommendations until pollDurationS has passed, noting when they first change.
// Actions in quick succession make one burst: items are highlighted against the list shown before the burst.
async function pollAfter(postedAt) {
  const poll = ++state.poll;
  if (!state.baseline) state.baseline = state.recs.slice();
  const baseline = state.baseline;
  const before = state.signature;
  let seenChange = false;
  while (poll === state.poll && performance.now() - postedAt < config.pollDurationS * 1000) {
    await refreshRecommendations(baseline);
    if (!seenChange && state.signature !== before) {
      seenChange = true;
      $("status-freshness").textContent = `${Math.round(performance.now() - postedAt)} ms`;
    }
    await sleep(config.pollIntervalMs);
  }
  if (poll !== state.poll) return;  // a newer action (or another shopper) took over
  state.baseline = null;
  if (!seenChange) $("status-freshness").textContent = `no change within ${config.pollDurationS} s`;
  await refreshTrending();
}

async function act(eventType, itemId) {
  const user = state.shopper || state.visitor;
  try {
    const postedAt = performance.now();
    await api("/v1/events", {method: "POST", body: JSON.stringify(
      {user_id: user, item_id: itemId, event_type: eventType, session_id: state.session})});
    logLine(`${user}: ${eventType} ${itemId}`);
    if (eventType === "view") {
      state.seen = [...state.seen.filter((i) => i !== itemId), itemId];
      showSimilar(itemId).catch((e) => logLine(e.message, true));
    }
    await pollAfter(postedAt);
  } catch (e) {
    logLine(e.message, true);
  }
}

async function refreshStatus() {
  try {
    const body = await api("/v1/status");
    $("status-model").textContent = body.model_version || "none published";
    const live = body.stream.events_to_redis;
    if (!body.redis) {
      $("status-lag").textContent = "Redis unavailable";
    } else if (!live || live.age_s == null) {
      $("status-lag").textContent = "stream not running";
      $("status-age").textContent = "never";
    } else {
      const lag = live.lag_mean_s == null ? "–" : `${live.lag_mean_s.toFixed(2)} s mean, ${live.lag_max_s.toFixed(2)} s max`;
      $("status-lag").textContent = lag;
      $("status-age").textContent = `${live.age_s.toFixed(1)} s ago (batch ${live.batch_id ?? "–"})`;
      $("status-backlog").textContent = live.kafka_lag == null ? "–" : `${live.kafka_lag} records`;
    }
  } catch (e) {
    $("status-model").textContent = e.message;
  }
}

async function choose(shopper) {
  state.shopper = shopper;
  state.seen = [];
  state.signature = "";
  state.poll += 1;  // stop polling for the previous shopper
  state.baseline = null;
  $("who").textContent = shopper || "a visitor";
  $("status-freshness").textContent = "–";
  try {
    await refreshRecommendations(null);
  } catch (e) {
    logLine(e.message, true);
  }
}

async function start() {
  $("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("api-key").addEventListener("change", () => sessionStorage.setItem(KEY_STORE, $("api-key").value.trim()));
  $("shopper").addEventListener("change", (e) => choose(e.target.value));
  $("shopper-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("shopper-id").value.trim();
    if (!id) return;
    if (![...$("shopper").options].some((o) => o.value === id)) $("shopper").add(new Option(id, id));
    $("shopper").value = id;
    choose(id);
  });
  try {
    const body = await api("/v1/demo/shoppers");
    for (const id of body.shoppers) $("shopper").add(new Option(id, id));
  } catch (e) {
    logLine(e.message, true);
  }
  await refreshStatus();
  setInterval(refreshStatus, config.statusRefreshS * 1000);
  setInterval(() => refreshTrending().catch((e) => logLine(e.message, true)), config.statusRefreshS * 1000);
  await Promise.all([choose(""), refreshTrending().catch((e) => logLine(e.message, true))]);
  document.body.dataset.ready = "true";
}

start();
