"use strict";
const DATA = JSON.parse(document.getElementById("data").dataset.json);
const labels = DATA.labels, blind = DATA.blind, fps = DATA.fps;
const n = labels.length;
const $ = id => document.getElementById(id);
const videos = labels.map((_, i) => $("video" + i));
const RATES = [1, 0.5, 0.25];

// ------------------------------------------------------------------ the person's answer
let rows = [labels.map((_, i) => i)];  // indices, best row first; one row: nothing chosen
let selected = null, pick = null, cantTell = false, busy = false, submitted = false;

function bestOf() { return rows.length > 1 && rows[0].length === 1 ? rows[0][0] : null; }
function worstOf() {
  const last = rows[rows.length - 1];
  return rows.length > 1 && last.length === 1 ? last[0] : null;
}
function valid() {
  if (cantTell || n === 1) return true;
  return blind ? pick !== null : bestOf() !== null;
}
function name(i) { return blind ? labels[i] : String(i + 1); }
function without(i) { return rows.map(r => r.filter(x => x !== i)).filter(r => r.length); }
function markBest(i) { cantTell = false; rows = [[i]].concat(without(i)); render(); }
function markWorst(i) { cantTell = false; rows = without(i).concat([[i]]); render(); }
function dropOnRow(i, r) {
  const target = rows[r];
  rows = rows.map(row => row === target ? row.filter(x => x !== i).concat([i]) : row.filter(x => x !== i))
             .filter(row => row.length);
  cantTell = false; render();
}
function dropInGap(i, g) {
  const out = [];
  rows.forEach((row, k) => { if (k === g) out.push([i]); const rest = row.filter(x => x !== i); if (rest.length) out.push(rest); });
  if (g >= rows.length) out.push([i]);
  rows = out; cantTell = false; render();
}
function startOver() { rows = [labels.map((_, i) => i)]; pick = null; cantTell = false; render(); }
function choose(i) { pick = i; cantTell = false; render(); }
function toggleCantTell() { cantTell = !cantTell; if (cantTell) pick = null; render(); }

function place(k) { return ["best", "2nd", "3rd"][k] || (k + 1) + "th"; }
function summary() {
  if (cantTell) return "Your answer: can't tell them apart";
  if (blind) return pick === null ? "Nothing chosen yet: \u2190 A is better, \u2192 B is better, \u2193 can't tell"
                                  : "Your verdict: " + labels[pick] + " is better than " + labels[1 - pick];
  if (n > 1 && bestOf() === null)
    return "Nothing chosen yet: choose a best (\u2605 Best on a card, or its number then B), or Can't tell";
  return "Your order: " + rows.map(r => r.map(name).join(" = ")).join(" > ");
}

function render() {
  const best = bestOf(), worst = worstOf();
  labels.forEach((_, i) => {
    const card = $("card" + i), mark = $("mark" + i);
    card.classList.toggle("selected", selected === i && !blind);
    card.classList.toggle("best", !blind && !cantTell && best === i);
    card.classList.toggle("worst", !blind && !cantTell && worst === i);
    card.classList.toggle("picked", blind && pick === i);
    let text = "", cls = "mark";
    if (blind) { if (pick === i) { text = "better"; cls += " best"; } }
    else if (!cantTell && best !== null) {
      const k = rows.findIndex(r => r.includes(i));
      if (best === i) { text = "best"; cls += " best"; }
      else if (worst === i) { text = "worst"; cls += " worst"; }
      else { text = place(k) + (rows[k].length > 1 ? " (tied)" : ""); cls += " rank"; }
    }
    mark.textContent = text; mark.className = cls;
  });
  document.querySelectorAll("[data-best]").forEach(b => b.setAttribute("aria-pressed", String(!cantTell && best === Number(b.dataset.best))));
  document.querySelectorAll("[data-worst]").forEach(b => b.setAttribute("aria-pressed", String(!cantTell && worst === Number(b.dataset.worst))));
  document.querySelectorAll("[data-pick]").forEach(b => b.setAttribute("aria-pressed", String(pick === Number(b.dataset.pick))));
  $("canttell").setAttribute("aria-pressed", String(cantTell));
  $("summary").textContent = summary();
  $("submit").disabled = !valid() || busy || submitted;
  if (valid() && $("status").classList.contains("refused")) status("");
  if (!blind) renderOrder();
}

function renderOrder() {
  const list = $("order");
  list.replaceChildren();
  const gap = g => {
    const li = document.createElement("li");
    li.className = "gap"; li.dataset.gap = g;
    target(li, i => dropInGap(i, g));
    return li;
  };
  rows.forEach((row, r) => {
    list.appendChild(gap(r));
    const li = document.createElement("li");
    li.className = "row"; li.dataset.row = r;
    const where = document.createElement("span");
    where.className = "place";
    const last = rows.length > 1 && r === rows.length - 1 && row.length === 1;
    where.textContent = rows.length === 1 ? "all tied" : last ? "worst" : place(r) + (row.length > 1 ? " (tied)" : "");
    li.appendChild(where);
    row.forEach(i => {
      const chip = document.createElement("span");
      chip.className = "chip"; chip.draggable = true; chip.title = labels[i];
      const num = document.createElement("b"); num.textContent = String(i + 1);
      const text = document.createElement("span"); text.textContent = labels[i];
      chip.append(num, text);
      chip.addEventListener("dragstart", e => e.dataTransfer.setData("text/plain", String(i)));
      li.appendChild(chip);
    });
    target(li, i => dropOnRow(i, r));
    list.appendChild(li);
  });
  list.appendChild(gap(rows.length));
}
function target(el, drop) {
  el.addEventListener("dragover", e => { e.preventDefault(); el.classList.add("over"); });
  el.addEventListener("dragleave", () => el.classList.remove("over"));
  el.addEventListener("drop", e => {
    e.preventDefault(); el.classList.remove("over");
    const i = Number(e.dataTransfer.getData("text/plain"));
    if (Number.isInteger(i) && i >= 0 && i < n) drop(i);
  });
}

// ------------------------------------------------------------------ sending it
function status(text, kind) { const s = $("status"); s.textContent = text; s.className = "status " + (kind || ""); }
async function postRanking(body) {
  busy = true; render();
  try {
    const response = await fetch("/rank", {
      method: "POST", headers: {"Content-Type": "application/json", "X-Token": DATA.token},
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      status("Not saved: " + text, "error");
      document.body.dataset.submitted = "no";
      return false;
    }
    submitted = true;
    document.body.dataset.submitted = "yes";
    let told = "";
    try {
      const reveal = JSON.parse(text).reveal || {};
      told = Object.keys(reveal).map(k => k + " was " + reveal[k]).join("; ");
    } catch (e) { told = ""; }
    status("Saved: the run goes on, and you can close this page." + (told ? " " + told + "." : ""), "ok");
    return true;
  } catch (e) {
    status("Not saved: the run's page did not answer (" + e + ")", "error");
    return false;
  } finally {
    busy = false; render();
  }
}
window.postRanking = postRanking;

function submit() {
  if (submitted || busy) return;
  if (!valid()) {
    status(blind ? "Not sent: choose A or B (\u2190 \u2192), or Can't tell (\u2193)."
                 : "Not sent: choose a best first (\u2605 Best on a card, or its number then B), or say you can't tell them apart (C).",
           "error refused");
    return;
  }
  const comments = {};
  labels.forEach((label, i) => { const t = $("comment" + i).value.trim(); if (t) comments[label] = t; });
  let order = [];
  if (!cantTell) order = blind ? [[labels[pick]], [labels[1 - pick]]] : rows.map(r => r.map(i => labels[i]));
  postRanking({order: order, cant_tell: cantTell, comments: comments, overall: $("overall").value.trim() || null});
}

// ------------------------------------------------------------------ playing every video together
let playing = true, rate = 1;
function master() {
  let m = null;
  videos.forEach(v => { if (v.duration && (!m || v.duration > m.duration)) m = v; });
  return m;
}
function stepsOf(v) { return Math.max(0, Math.round((v.duration || 0) * fps) - 1); }
function stepAt(t, v) { return Math.min(stepsOf(v), Math.floor(t * fps + 1e-6)); }
function seek(t) {
  videos.forEach(v => { if (v.duration) v.currentTime = Math.max(0, Math.min(t, v.duration)); });
}
function play(on) {
  playing = on;
  videos.forEach(v => {
    if (!on) { v.pause(); return; }
    if (v.duration && v.currentTime < v.duration - 0.01) v.play().catch(() => { playing = false; showPlay(); });
  });
  showPlay();
}
function showPlay() {
  $("playText").textContent = playing ? "Pause" : "Play";
  $("playIcon").textContent = playing ? "\u275a\u275a" : "\u25b6";
}
function replay() { seek(0); play(true); }
function setRate(r) {
  rate = r;
  videos.forEach(v => { v.playbackRate = r; });
  document.querySelectorAll(".rate").forEach(b => b.classList.toggle("on", Number(b.dataset.rate) === r));
}
function frame(dir) {
  const m = master(); if (!m) return;
  play(false); seek(m.currentTime + dir / fps);
}
function tick() {
  const m = master();
  if (m) {
    if (playing) {
      if (m.ended || m.currentTime >= m.duration - 0.005) { seek(0); play(true); }
      else videos.forEach(v => {
        if (v === m || !v.duration) return;
        if (m.currentTime < v.duration - 0.05) {
          if (Math.abs(v.currentTime - m.currentTime) > 0.12) v.currentTime = m.currentTime;
          if (v.paused) v.play().catch(() => {});
        }
      });
    }
    const t = m.currentTime;
    if (document.activeElement !== $("scrub")) $("scrub").value = String(Math.round(1000 * t / m.duration));
    $("clock").textContent = "step " + stepAt(t, m) + " / " + stepsOf(m) + " \u00b7 " + t.toFixed(2) + " s / "
      + m.duration.toFixed(2) + " s" + (rate !== 1 ? " \u00b7 " + rate + "\u00d7" : "");
    videos.forEach((v, i) => {
      const over = $("over" + i);
      const done = v !== m && v.duration && t >= v.duration - 0.04;
      over.hidden = !done;
      if (done) over.textContent = "episode over at step " + stepsOf(v);
    });
  }
  requestAnimationFrame(tick);
}
$("scrub").addEventListener("input", () => {
  const m = master(); if (m) seek(m.duration * Number($("scrub").value) / 1000);
});

// ------------------------------------------------------------------ controls and keys
$("play").addEventListener("click", () => play(!playing));
$("replay").addEventListener("click", replay);
document.querySelectorAll(".rate").forEach(b => b.addEventListener("click", () => setRate(Number(b.dataset.rate))));
$("canttell").addEventListener("click", toggleCantTell);
$("submit").addEventListener("click", submit);
document.querySelectorAll("[data-best]").forEach(b => b.addEventListener("click", () => { selected = Number(b.dataset.best); markBest(selected); }));
document.querySelectorAll("[data-worst]").forEach(b => b.addEventListener("click", () => { selected = Number(b.dataset.worst); markWorst(selected); }));
document.querySelectorAll("[data-pick]").forEach(b => b.addEventListener("click", () => choose(Number(b.dataset.pick))));
function toggleFacts() {
  const plain = document.body.classList.toggle("plain");
  $("facts").setAttribute("aria-pressed", String(!plain));
  $("facts").firstChild.textContent = "What each did: " + (plain ? "hidden " : "shown ");
}
if (!blind) {
  $("facts").addEventListener("click", toggleFacts);
  $("reset").addEventListener("click", startOver);
  labels.forEach((_, i) => $("card" + i).addEventListener("click", e => {
    if (e.target.closest("button, textarea")) return;
    selected = i; render();
  }));
}
document.addEventListener("keydown", e => {
  const tag = e.target.tagName;
  if (tag === "TEXTAREA" || (tag === "INPUT" && e.key !== "Enter") || e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  let done = true;
  if (key === " ") play(!playing);
  else if (key === "r") replay();
  else if (key === "s") setRate(RATES[(RATES.indexOf(rate) + 1) % RATES.length]);
  else if (key === ",") frame(-1);
  else if (key === ".") frame(1);
  else if (key === "Enter") submit();
  else if (blind && key === "ArrowLeft") choose(0);
  else if (blind && key === "ArrowRight") choose(1);
  else if (blind && (key === "ArrowDown" || key === "c")) toggleCantTell();
  else if (!blind && key >= "1" && key <= "9" && Number(key) <= n) { selected = Number(key) - 1; render(); }
  else if (!blind && key === "b" && selected !== null) markBest(selected);
  else if (!blind && key === "w" && selected !== null) markWorst(selected);
  else if (!blind && key === "c") toggleCantTell();
  else if (!blind && key === "u") startOver();
  else if (!blind && key === "h") toggleFacts();
  else done = false;
  if (done) e.preventDefault();
});

let loaded = 0;
videos.forEach(v => v.addEventListener("loadedmetadata", () => { loaded += 1; if (loaded === n) { setRate(rate); play(true); } }));
render();
requestAnimationFrame(tick);
