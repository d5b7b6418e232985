// Charter's workspace script: what htmx attributes cannot say without eval (the CSP forbids
// eval and inline handlers), as listeners.
"use strict";

// Sign-in from a link: `charter demo` prints `/sign-in#key=...`. The fragment never leaves
// the browser (no server log, no Referer); it is removed from the address bar and history at
// once, then the form is submitted as if the key were pasted.
function signInFromFragment() {
  const form = document.getElementById("sign-in");
  const hash = window.location.hash;
  if (!form || !hash.startsWith("#key=")) {
    return;
  }
  const key = decodeURIComponent(hash.slice("#key=".length));
  history.replaceState(null, "", window.location.pathname);
  if (key) {
    form.elements.namedItem("key").value = key;
    form.submit();
  }
}

// The tenant switcher applies a choice at once (its button stays for keyboards and no JS).
function switchTenantOnChange() {
  const select = document.getElementById("tenant-select");
  if (select) {
    select.addEventListener("change", () => select.form.submit());
  }
}

// After htmx swaps a page's content in: its title, the sidebar's current item, focus.
function afterSwap(event) {
  const content = document.getElementById("content");
  if (!content || event.detail.target !== content) {
    return;
  }
  const page = content.querySelector("[data-title]");
  if (page) {
    document.title = page.dataset.title;
  }
  const path = window.location.pathname;
  document.querySelectorAll(".nav a").forEach((link) => {
    const href = link.getAttribute("href");
    if (path === href || path.startsWith(href + "/")) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  });
  // The element that had focus was swapped out: move focus to the new content.
  if (!content.contains(document.activeElement) || document.activeElement === document.body) {
    content.focus({ preventScroll: true });
  }
}

// The live Monitor: htmx's SSE extension puts each new row at the top of the table. Paused,
// rows are held back (counted); resuming reloads the page's content, which has them all.
const live = { paused: false, held: 0 };

function liveStatus(text) {
  const status = document.getElementById("live-status");
  if (status) {
    status.textContent = text;
  }
}

function toggleLive(event) {
  const button = event.target.closest("#live-toggle");
  if (!button) {
    return;
  }
  live.paused = !live.paused;
  button.setAttribute("aria-pressed", String(live.paused));
  button.textContent = live.paused ? "Resume" : "Pause";
  if (live.paused) {
    liveStatus("Paused: new events are held back");
  } else {
    const held = live.held;
    live.held = 0;
    liveStatus("Live: new events appear at the top");
    if (held > 0) {
      htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#content" });
    }
  }
}

function beforeLiveRow(event) {
  if (event.target.id !== "events") {
    return;
  }
  if (live.paused) {
    event.preventDefault();
    live.held += 1;
    liveStatus(`Paused: ${live.held} new ${live.held === 1 ? "event" : "events"} held back`);
    return;
  }
  // The first row replaces the empty state.
  document.getElementById("events-empty")?.remove();
  event.target.closest(".table-wrap")?.classList.remove("is-empty");
}

// A new page of content is live again.
function resetLive(event) {
  if (event.detail.target && event.detail.target.id === "content") {
    live.paused = false;
    live.held = 0;
  }
}

// Whether the stream is open, for the reader (and the tests): the extension reconnects by
// itself after an error.
function liveState(state, text) {
  return (event) => {
    const box = event.target.closest(".live");
    if (box) {
      box.dataset.state = state;
      if (!live.paused) {
        liveStatus(text);
      }
    }
  };
}

document.addEventListener("click", toggleLive);
document.addEventListener("htmx:sseOpen", liveState("open", "Live: new events appear at the top"));
document.addEventListener("htmx:sseError", liveState("error", "Reconnecting to the live stream…"));
document.addEventListener("htmx:sseBeforeMessage", beforeLiveRow);
document.addEventListener("htmx:beforeSwap", resetLive);

document.addEventListener("DOMContentLoaded", () => {
  signInFromFragment();
  switchTenantOnChange();
});
document.addEventListener("htmx:afterSettle", afterSwap);
