// The studio's few actions: decisions (one variant or the chosen cards) and
// caption saves. Every write carries the run's token in a header, which a
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
  if (save) {
    save.addEventListener("click", async () => {
      const text = document.getElementById("caption-text").value;
      try {
        await post("/api/caption", {path, text, version: article.dataset.version});
        location.reload();
      } catch (error) {
        say(error.message, true);
      }
    });
  }
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
