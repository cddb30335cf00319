// Dashboard listing: reads the contents API and renders one line per entry.
(function () {
  "use strict";
  const base = document.body.dataset.baseUrl;
  const list = document.getElementById("listing");
  const path = list.dataset.path;
  const quote = (p) => p.split("/").map(encodeURIComponent).join("/");
  fetch(base + "api/contents/" + quote(path) + "?content=1", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((model) => {
      list.textContent = "";
      // Folders first, then notebooks and files together by name (three types, two groups).
      const folder = (entry) => (entry.type === "directory" ? 0 : 1);
      const entries = (model.content || []).sort((a, b) =>
        folder(a) - folder(b) || a.name.localeCompare(b.name));
      for (const entry of entries) {
        const item = document.createElement("li");
        const link = document.createElement("a");
        const page = entry.type === "directory" ? "tree/" : entry.type === "notebook" ? "notebooks/" : "files/";
        link.href = base + page + quote(entry.path);
        link.textContent = entry.name + (entry.type === "directory" ? "/" : "");
        item.appendChild(link);
        list.appendChild(item);
      }
      if (!entries.length) list.innerHTML = '<li class="muted">This folder is empty.</li>';
    })
    .catch((status) => { list.innerHTML = '<li class="error">Could not list this folder (' + status + ').</li>'; });
})();
