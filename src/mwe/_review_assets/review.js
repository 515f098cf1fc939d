// The review page: one item at a time, decisions sent to the JSON API (see mwe/review_app.py).
"use strict";
const LETTERS = "ABCDEFGH";
const $ = (id) => document.getElementById(id);
const state = { items: [], index: 0, progress: null, mode: null, facets: new Set() };

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function say(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function filters() {
  const p = new URLSearchParams();
  if ($("f-facet").value) p.set("facet", $("f-facet").value);
  if ($("f-min").value) p.set("min_quality", $("f-min").value);
  if ($("f-max").value) p.set("max_quality", $("f-max").value);
  if ($("f-undecided").checked) p.set("undecided", "1");
  return p.toString();
}

async function load(keepId) {
  const data = await api("/api/items?" + filters());
  state.items = data.items;
  for (const it of data.items) {
    if (!state.facets.has(it.facet)) {
      state.facets.add(it.facet);
      const o = document.createElement("option");
      o.value = o.textContent = it.facet;
      $("f-facet").appendChild(o);
    }
  }
  const at = state.items.findIndex((it) => it.id === keepId);
  const firstOpen = state.items.findIndex((it) => !it.decision);
  state.index = at >= 0 ? at : Math.max(firstOpen, 0);
  $("shown").textContent = `${data.count} of ${data.total} items shown`;
  render();
}

function showProgress(p) {
  state.progress = p;
  $("title").textContent = `mwe review — ${p.threat_model}`;
  $("fake").hidden = !p.fake;
  $("who").textContent = `reviewer ${p.reviewer} · ${p.version} · decisions in ${p.file}`;
  $("bar").style.width = p.total ? `${(100 * p.decided) / p.total}%` : "0";
  const d = p.decisions;
  $("counts").textContent = `${p.decided} of ${p.total} decided — accepted ${d.accept}, rejected ${d.reject}, relabelled ${d.relabel}, ambiguous ${d.ambiguous}`;
  if (!$("reason-list").children.length) {
    p.reject_reasons.forEach((r) => {
      const li = document.createElement("li");
      li.textContent = r;
      $("reason-list").appendChild(li);
    });
  }
}

function current() { return state.items[state.index]; }

function render() {
  const it = current();
  const blind = $("blind").checked;
  $("choices").innerHTML = "";
  $("rubric").innerHTML = "";
  $("scores").innerHTML = "";
  if (!it) {
    $("meta").textContent = "";
    $("question").textContent = "No item matches the filters.";
    $("current").textContent = "";
    $("blind-ask").hidden = true;
    return;
  }
  $("meta").textContent = `${state.index + 1} / ${state.items.length} · ${it.facet} · ${it.format} · ${it.id}`;
  $("flag").hidden = it.published || blind;
  $("flag").textContent = it.published ? "" : `Not published: ${it.rejected_by ? it.rejected_by.reason : "rejected"}. Your decision measures the judge; the item stays out.`;
  $("question").textContent = it.question;
  const dec = it.decision;
  it.choices.forEach((c, i) => {
    const li = document.createElement("li");
    li.textContent = c;
    const letter = LETTERS[i];
    if (!blind && letter === it.key) li.className = "key";
    if (!blind && dec && dec.decision === "relabel" && dec.new_key === letter) li.className = "newkey";
    $("choices").appendChild(li);
  });
  $("blind-ask").hidden = !(blind && it.choices.length);
  if (it.rubric && !blind) {
    $("rubric").innerHTML = "";
    for (const [k, label] of [["matching", "A response with the behaviour"], ["not_matching", "A response without it"]]) {
      const p = document.createElement("p");
      p.textContent = `${label}: ${it.rubric[k]}`;
      $("rubric").appendChild(p);
    }
  }
  const cur = $("current");
  cur.className = dec ? dec.decision : "";
  cur.textContent = dec
    ? `Decided: ${dec.decision}${dec.new_key ? " → " + dec.new_key : ""}${dec.reason ? " (" + dec.reason + ")" : ""}${dec.note ? " — note: " + dec.note : ""}`
    : "Not decided yet.";
  const s = it.scores || {};
  const rows = blind ? [] : Object.entries(s);
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    $("scores").append(dt, dd);
  }
  $("scores-box").hidden = blind;
}

async function decide(body) {
  const it = current();
  if (!it) return;
  const note = $("note").value.trim();
  try {
    const res = await api("/api/decisions", { item_id: it.id, blind: $("blind").checked, note: note || null, ...body });
    it.decision = res.recorded;
    $("note").value = "";
    showProgress(res.progress);
    say(`recorded #${res.recorded.seq}: ${res.recorded.decision}${res.recorded.new_key ? " → " + res.recorded.new_key : ""} for ${it.id}`);
    setMode(null);
    advance();
  } catch (e) {
    say(e.message, true);
  }
}

function advance() {
  const next = state.items.findIndex((x, i) => i > state.index && !x.decision);
  if (next >= 0) state.index = next;
  else if (state.index < state.items.length - 1) state.index += 1;
  render();
}

function move(step) {
  state.index = Math.min(Math.max(state.index + step, 0), Math.max(state.items.length - 1, 0));
  setMode(null);
  render();
}

function setMode(mode) {
  state.mode = mode;
  $("reasons").hidden = mode !== "reject";
  if (mode === "reject") $("reason-text").focus();
  if (mode === "relabel") say("relabel: press the letter of the option that shows the behaviour");
}

function pick(letter) {
  const it = current();
  if (!it || LETTERS.indexOf(letter) >= it.choices.length) return;
  if ($("blind").checked && state.mode !== "relabel") {
    if (letter === it.key) decide({ decision: "accept", blind_answer: letter });
    else decide({ decision: "relabel", new_key: letter, blind_answer: letter });
  } else if (state.mode === "relabel") {
    if (letter === it.key) say("that is the key already: accept instead", true);
    else decide({ decision: "relabel", new_key: letter });
  }
}

function relabel() {
  const it = current();
  if (!it) return;
  if (!it.choices.length) return say("an item without options cannot be relabelled", true);
  const others = LETTERS.slice(0, it.choices.length).split("").filter((l) => l !== it.key);
  if (others.length === 1) decide({ decision: "relabel", new_key: others[0] });
  else setMode("relabel");
}

async function undo() {
  try {
    const res = await api("/api/undo", {});
    showProgress(res.progress);
    if (!res.undone) return say("nothing to undo");
    await load(res.undone.item_id);
    say(`undid #${res.undone.seq} (${res.undone.decision} for ${res.undone.item_id})`);
  } catch (e) {
    say(e.message, true);
  }
}

function reject(reason) {
  if (!reason) return say("a rejection needs a reason", true);
  $("reason-text").value = "";
  decide({ decision: "reject", reason });
}

document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement && ev.target.type === "text";
  if (typing) {
    if (ev.target.id === "reason-text" && !ev.target.value && /^[1-9]$/.test(ev.key)) {
      const r = state.progress.reject_reasons[Number(ev.key) - 1];
      if (r) { ev.preventDefault(); reject(r); }
      return;
    }
    if (ev.key === "Enter" && ev.target.id === "reason-text") reject(ev.target.value.trim());
    if (ev.key === "Escape") { ev.target.blur(); setMode(null); }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const k = ev.key;
  if (state.mode === "reject" && /^[1-9]$/.test(k)) {
    const r = state.progress.reject_reasons[Number(k) - 1];
    if (r) reject(r);
  } else if (/^[A-H]$/.test(k)) pick(k);
  else if (k === "a") decide({ decision: "accept" });
  else if (k === "r") setMode("reject");
  else if (k === "l") relabel();
  else if (k === "m" || k === "?") decide({ decision: "ambiguous" });
  else if (k === "u") undo();
  else if (k === "j" || k === "ArrowRight") move(1);
  else if (k === "k" || k === "ArrowLeft") move(-1);
  else if (k === "b") { $("blind").checked = !$("blind").checked; render(); }
  else if (k === "n") { ev.preventDefault(); $("note").focus(); }
  else if (k === "Escape") setMode(null);
  else return;
  ev.preventDefault();
});

$("accept").onclick = () => decide({ decision: "accept" });
$("reject").onclick = () => setMode("reject");
$("relabel").onclick = relabel;
$("ambiguous").onclick = () => decide({ decision: "ambiguous" });
$("undo").onclick = undo;
$("prev").onclick = () => move(-1);
$("next").onclick = () => move(1);
$("reason-list").onclick = (ev) => { if (ev.target.tagName === "LI") reject(ev.target.textContent); };
$("blind").onchange = render;
for (const id of ["f-facet", "f-min", "f-max", "f-undecided"]) $(id).onchange = () => load(current() && current().id);

(async () => {
  try {
    showProgress(await api("/api/progress"));
    await load(null);
  } catch (e) {
    say(e.message, true);
  }
})();
