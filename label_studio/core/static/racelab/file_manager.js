// The file manager: list a project's file uploads, upload more, poll until every import is final.
//
// Everything shown comes from the fields GET /api/projects/{id}/file-uploads returns: a row's
// badge is its `status`, and a task count is shown only once the status is `completed` (a count
// read while an import runs is not the answer, and "0 tasks" is exactly the bug this page avoids).
(function () {
  "use strict";

  const FINAL = new Set(["completed", "failed"]);
  const MIN_DELAY = 500;
  const MAX_DELAY = 5000;

  const root = document.getElementById("file-manager");
  const form = document.getElementById("upload-form");
  const input = document.getElementById("upload-files");
  const asyncBox = document.getElementById("upload-async");
  const button = document.getElementById("upload-button");
  const tbody = document.getElementById("uploads");
  const banner = document.getElementById("banner");
  const bannerText = document.getElementById("banner-text");
  const summary = document.getElementById("summary");

  let uploads = new Map(); // id -> file upload, as the API last said
  let optimistic = []; // {key, name}: files sent but not listed yet
  let expanded = new Set(); // ids of PDF parents whose pages are shown
  let loaded = false;
  let delay = MIN_DELAY;
  let timer = null;
  let inFlight = false;
  let nextKey = 1;

  function csrfToken() {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  function showError(message) {
    bannerText.textContent = message;
    banner.hidden = false;
  }

  function hideError() {
    banner.hidden = true;
    bannerText.textContent = "";
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text; // never innerHTML: file names are user input
    return node;
  }

  // --- rendering ------------------------------------------------------------------------------

  function badgeFor(upload, pages) {
    switch (upload.status) {
      case "pending":
        return el("span", {class: "badge pending"}, "Pending");
      case "processing": {
        const done = pages.filter((p) => p.status === "completed").length;
        const text = pages.length ? "Processing… " + done + "/" + pages.length + " pages" : "Processing…";
        return el("span", {class: "badge processing"}, text);
      }
      case "completed":
        return el("span", {class: "badge completed"}, plural(upload.task_count, "task", "tasks"));
      case "failed":
        return el("span", {class: "badge failed"}, "Failed: " + (upload.error_message || "no reason given"));
      default: // a status this page does not know yet: show it, never a count
        return el("span", {class: "badge pending"}, String(upload.status));
    }
  }

  function uploadedCell(createdAt) {
    const td = el("td");
    if (createdAt) {
      const when = new Date(createdAt);
      td.append(el("time", {datetime: createdAt, title: when.toISOString()}, when.toLocaleString()));
    } else {
      td.append(el("span", {class: "muted"}, "uploading…"));
    }
    return td;
  }

  function row(upload, pages, isPage) {
    const tr = el("tr", {"data-upload-id": upload.id, "data-status": upload.status, class: isPage ? "page" : ""});
    const name = el("td");
    name.append(el("span", {class: "file-name"}, isPage ? "Page " + upload.page_number : upload.file_name));
    if (pages.length) {
      const open = expanded.has(upload.id);
      const toggle = el("button", {type: "button", class: "link pages-toggle", "aria-expanded": String(open),
                                   "aria-controls": "pages-of-" + upload.id}, (open ? "▾ " : "▸ ") + plural(pages.length, "page", "pages"));
      toggle.addEventListener("click", () => {
        open ? expanded.delete(upload.id) : expanded.add(upload.id);
        render();
      });
      name.append(" ", toggle);
    }
    const status = el("td", {class: "status"});
    status.append(badgeFor(upload, pages));
    tr.append(name, uploadedCell(upload.created_at), status);
    return tr;
  }

  function render() {
    const all = [...uploads.values()];
    const pagesOf = new Map();
    for (const u of all) {
      if (u.parent != null) {
        if (!pagesOf.has(u.parent)) pagesOf.set(u.parent, []);
        pagesOf.get(u.parent).push(u);
      }
    }
    const rows = [];
    for (const item of optimistic) {
      const tr = row({id: item.key, status: "pending", file_name: item.name}, [], false);
      tr.classList.add("optimistic");
      rows.push(tr);
    }
    // Newest first; a page whose parent is not listed still shows, as a top-level row.
    const top = all.filter((u) => u.parent == null || !uploads.has(u.parent)).sort((a, b) => b.id - a.id);
    for (const upload of top) {
      const pages = (pagesOf.get(upload.id) || []).sort((a, b) => a.page_number - b.page_number);
      rows.push(row(upload, pages, false));
      if (expanded.has(upload.id)) {
        for (const page of pages) {
          const tr = row(page, [], true);
          tr.setAttribute("data-parent", upload.id);
          rows.push(tr);
        }
      }
    }
    if (!rows.length) {
      const tr = el("tr");
      tr.append(el("td", {colspan: "3", class: "muted"}, loaded ? "No files yet. Upload some above." : "Loading…"));
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    for (const id of expanded) {
      const first = tbody.querySelector('tr[data-parent="' + id + '"]');
      if (first) first.id = "pages-of-" + id;
    }
    renderSummary(all);
  }

  // A failed file's row keeps its message; the others of its import were still imported (each file commits alone).
  function renderSummary(all) {
    const top = all.filter((u) => u.parent == null);
    const busy = top.filter((u) => !FINAL.has(u.status)).length + optimistic.length;
    const failed = top.filter((u) => u.status === "failed").length;
    if (busy) {
      summary.textContent = plural(busy, "file", "files") + " importing…";
    } else if (failed) {
      summary.textContent = "All imports finished; " + failed + " of " + plural(top.length, "file", "files") +
        " failed and added no tasks; the rest were imported. Fix and upload only the failed " +
        (failed === 1 ? "file" : "files") + " again.";
    } else {
      summary.textContent = all.length ? "All imports finished." : "";
    }
  }

  // --- polling --------------------------------------------------------------------------------

  function anyBusy() {
    return optimistic.length > 0 || [...uploads.values()].some((u) => !FINAL.has(u.status));
  }

  function setPolling(on) {
    root.dataset.polling = String(on);
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!anyBusy()) {
      setPolling(false);
      return;
    }
    setPolling(true);
    timer = setTimeout(refresh, delay);
  }

  // Fetch the list; back off while nothing changes, start over as soon as something does.
  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const response = await fetch(root.dataset.uploadsUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (response.status === 401 || response.status === 403) {
        showError("Your session has ended. Log in again to see the files.");
        setPolling(false);
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const listed = await response.json();
      const before = JSON.stringify([...uploads.values()].map((u) => [u.id, u.status, u.task_count]));
      uploads = new Map(listed.map((u) => [u.id, u]));
      const after = JSON.stringify(listed.map((u) => [u.id, u.status, u.task_count]));
      delay = before === after ? Math.min(delay * 2, MAX_DELAY) : MIN_DELAY;
      loaded = true;
      render();
    } catch (error) {
      delay = Math.min(delay * 2, MAX_DELAY);
      summary.textContent = "Could not refresh the list (" + error.message + "); trying again.";
    } finally {
      inFlight = false;
    }
    schedule();
  }

  // --- uploading ------------------------------------------------------------------------------

  async function upload(event) {
    event.preventDefault();
    const files = [...input.files];
    if (!files.length) {
      showError("Choose one or more files to upload first.");
      return;
    }
    hideError();
    const batch = files.map((file) => ({key: "new-" + nextKey++, name: file.name}));
    optimistic = batch.concat(optimistic);
    render();
    const body = new FormData();
    for (const file of files) body.append("file", file, file.name);
    button.disabled = true;
    button.textContent = "Uploading…";
    try {
      const url = root.dataset.importUrl + "?async=" + (asyncBox.checked ? "true" : "false");
      const response = await fetch(url, {method: "POST", body, credentials: "same-origin",
                                         headers: {"X-CSRFToken": csrfToken(), Accept: "application/json"}});
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        showError(data.detail || "The upload failed (HTTP " + response.status + "). Try again, or check the server log.");
      } else {
        form.reset();
        asyncBox.checked = url.endsWith("true");
      }
    } catch (error) {
      showError("The upload did not reach the server (" + error.message + "). Check the connection and try again.");
    } finally {
      button.disabled = false;
      button.textContent = "Upload";
    }
    // Keep the pending rows until the list that replaces them has arrived.
    delay = MIN_DELAY;
    clearTimeout(timer);
    while (inFlight) await new Promise((resolve) => setTimeout(resolve, 50));
    const keys = new Set(batch.map((item) => item.key));
    optimistic = optimistic.filter((item) => !keys.has(item.key));
    await refresh();
  }

  form.addEventListener("submit", upload);
  document.getElementById("banner-close").addEventListener("click", hideError);
  refresh();
})();
