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
