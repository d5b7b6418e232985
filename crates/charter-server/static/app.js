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

// The tenant switcher applies a choice at once (its button stays for keyboards and no JS),
// and returns to the page shown now: after htmx swapped pages in, the address says which,
// not the sidebar's `next`, rendered with the first page.
function switchTenantOnChange() {
  const select = document.getElementById("tenant-select");
  if (!select) {
    return;
  }
  const here = () => {
    const next = select.form.elements.namedItem("next");
    if (next) {
      next.value = window.location.pathname + window.location.search;
    }
  };
  select.form.addEventListener("submit", here);
  select.addEventListener("change", () => {
    here();
    select.form.submit();
  });
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

// A copy button (`data-copy` names the element whose text it copies): a key's value, shown
// once. Without clipboard access (an insecure origin, a refused permission) the text is
// selected instead, for the user to copy.
function copyOnClick(event) {
  const button = event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  const source = document.getElementById(button.dataset.copy);
  const status = button.closest(".secret-box")?.querySelector(".copy-status");
  if (!source) {
    return;
  }
  const say = (text) => {
    if (status) {
      status.textContent = text;
    }
  };
  const select = () => {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say("Selected: press Ctrl+C (or ⌘C) to copy.");
  };
  if (!navigator.clipboard) {
    select();
    return;
  }
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => {
      button.textContent = "Copied";
      say("Copied to the clipboard.");
    },
    select,
  );
}

document.addEventListener("click", copyOnClick);
document.addEventListener("DOMContentLoaded", () => {
  signInFromFragment();
  switchTenantOnChange();
});
document.addEventListener("htmx:afterSettle", afterSwap);
