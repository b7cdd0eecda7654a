// The studio's few actions: decisions (one variant or the chosen cards),
// caption saves and exports. Every write carries the run's token in a header, which a
// page from another origin cannot send without a preflight this server refuses.
"use strict";

const token = document.querySelector('meta[name="review-token"]').content;

function say(text, bad) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = bad ? "bad" : "good";
  box.hidden = false;
}

async function post(url, body) {
  const answer = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Review-Token": token},
    body: JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({error: answer.statusText}));
  if (!answer.ok) throw new Error(data.error || answer.statusText);
  return data;
}

function wire(form, paths, versions) {
  form.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const reason = form.querySelector('input[name="reason"]').value.trim();
      const chosen = paths();
      if (!chosen.length) return say("Choose variants first.", true);
      if (action === "reject" && !reason) return say("Rejecting needs a reason.", true);
      try {
        await post("/api/decide", {paths: chosen, action, reason, versions: versions()});
        location.reload();
      } catch (error) {
        say(error.message, true);
      }
    });
  });
}

const article = document.querySelector("article.variant");
if (article) {
  const path = article.dataset.path;
  const version = () => ({[path]: article.dataset.version});
  wire(document.getElementById("decide"), () => [path], version);
  const save = document.getElementById("save-caption");
  const box = document.getElementById("caption-text");
  const counter = document.getElementById("counter");
  const show = (count) => {
    if (!counter) return;
    let text = `${count.length}${count.limit ? " / " + count.limit : ""} ${count.unit}`;
    if (count.max_hashtags !== null) text += ` · ${count.hashtags} / ${count.max_hashtags} hashtags`;
    counter.textContent = text;
    counter.classList.toggle("over", count.over);
  };
  let pending = null;
  if (box && counter) {
    // The platform's own unit, counted by the server's (the guard's) function.
    box.addEventListener("input", () => {
      clearTimeout(pending);
      pending = setTimeout(async () => {
        try {
          show(await post("/api/length", {path, text: box.value}));
        } catch (error) {
          say(error.message, true);
        }
      }, 120);
    });
  }
  if (save) {
    save.addEventListener("click", async () => {
      try {
        const saved = await post("/api/caption", {path, text: box.value,
                                                  version: article.dataset.version});
        article.dataset.version = saved.version;
        box.value = saved.text;
        show(saved.count);
        const changes = document.getElementById("changes");
        changes.replaceChildren(...saved.changes.map((change) => {
          const item = document.createElement("li");
          item.textContent = change;
          return item;
        }));
        changes.hidden = !saved.changes.length;
        say(saved.changes.length ? "Saved, held to the platform: " + saved.changes.join("; ")
                                 : "Saved.", false);
      } catch (error) {
        say(error.message, true);
      }
    });
  }
}

const master = document.querySelector("#master .frame");
if (master && article) {
  // A click on the master picks the subject; the button writes it as the master's
  // focus in shoot.yaml and renders that master again.
  let point = null;
  const mark = document.getElementById("focus-mark");
  const [width, height] = document.querySelector("#master svg")
    .getAttribute("viewBox").split(" ").slice(2).map(Number);
  master.addEventListener("click", (event) => {
    const box = master.getBoundingClientRect();
    point = {x: (event.clientX - box.left) / box.width, y: (event.clientY - box.top) / box.height};
    mark.setAttribute("cx", point.x * width);
    mark.setAttribute("cy", point.y * height);
    document.getElementById("focus-at").textContent =
      `focus ${point.x.toFixed(3)}, ${point.y.toFixed(3)}`;
    document.querySelector(".refocus").hidden = false;
  });
  document.getElementById("refocus").addEventListener("click", async (event) => {
    event.target.disabled = true;
    say("Rendering again…", false);
    try {
      await post("/api/focus", {path: article.dataset.path, ...point});
      location.reload();
    } catch (error) {
      event.target.disabled = false;
      say(error.message, true);
    }
  });
}

const zones = document.getElementById("show-zones");
if (zones) {
  zones.addEventListener("change", () => {
    document.getElementById("zones").hidden = !zones.checked;
  });
}

const bulk = document.getElementById("bulk");
if (bulk) {
  const picked = () => [...document.querySelectorAll('input[name="pick"]:checked')]
    .map((box) => box.value);
  document.querySelectorAll('input[name="pick"]').forEach((box) =>
    box.addEventListener("change", () => {
      document.getElementById("chosen").textContent = picked().length;
    }));
  wire(bulk, picked, () => null);
}

const exporting = document.getElementById("export-form");
if (exporting) {
  // The server makes the files (as `repurpose export` does); the page offers each
  // as a download. Reasons name files, so everything goes in as text.
  const fields = exporting.elements;
  if (!fields.tz.value) fields.tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  let urls = [];
  const items = (list, text) => list.map((entry) => {
    const item = document.createElement("li");
    item.textContent = text(entry);
    return item;
  });
  const download = (file) => {
    const type = file.name.endsWith(".json") ? "application/json"
      : file.name.endsWith(".csv") ? "text/csv" : "text/plain";
    const url = URL.createObjectURL(new Blob([file.text], {type: `${type};charset=utf-8`}));
    urls.push(url);
    const link = document.createElement("a");
    link.href = url;
    link.download = file.name;
    link.textContent = file.name;
    const item = document.createElement("li");
    item.append(link);
    return item;
  };
  const show = (made, error) => {
    urls.forEach((url) => URL.revokeObjectURL(url));
    urls = [];
    const drafts = made.drafts ? ` (${made.drafts} draft)` : "";
    document.getElementById("export-summary").textContent = error ? "Nothing exported."
      : `${made.posts} post(s)${drafts}, ${made.skipped.length} skipped.`;
    const problem = document.getElementById("export-error");
    problem.textContent = error || "";
    problem.hidden = !error;
    document.getElementById("export-files").replaceChildren(...(made.files || []).map(download));
    document.getElementById("export-notes").replaceChildren(
      ...items(made.notes || [], (note) => `note: ${note}`));
    const skipped = made.skipped || [];
    document.getElementById("export-skipped-title").hidden = !skipped.length;
    document.getElementById("export-skipped").replaceChildren(
      ...items(skipped, (skip) => `${skip.path}: ${skip.reason}`));
    document.getElementById("export-result").hidden = false;
  };
  exporting.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = exporting.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      show(await post("/api/export", {
        format: fields.format.value, base_url: fields.base_url.value.trim(),
        start: fields.start.value, every: fields.every.value.trim(),
        tz: fields.tz.value.trim(), include_drafts: fields.include_drafts.checked,
      }));
    } catch (error) {
      show({}, error.message);
      say(error.message, true);
    } finally {
      button.disabled = false;
    }
  });
}
