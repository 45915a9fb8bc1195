// Small progressive enhancement for the back office (the pages work without it):
// - forms marked data-guard warn before their unsaved edits are lost (leaving the page or pressing another form's button);
// - forms marked data-confirm ask before they submit;
// - a field named by a refused save is marked invalid and focused.
"use strict";
(function () {
  let dirty = null;
  document.querySelectorAll("form[data-guard]").forEach((form) => {
    const start = new FormData(form);
    const changed = () => {
      const now = new FormData(form);
      for (const [key, value] of now.entries()) {
        if (key !== "csrf_token" && typeof value === "string" && value !== start.get(key)) return true;
      }
      return false;
    };
    form.addEventListener("input", () => { dirty = changed() ? form : null; form.dataset.dirty = dirty ? "1" : ""; });
    form.addEventListener("submit", () => { dirty = null; });
    if (form.dataset.guard === "dirty") { dirty = form; form.dataset.dirty = "1"; }
  });
  window.addEventListener("beforeunload", (event) => {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
  document.querySelectorAll("form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (dirty && dirty !== form && !form.hasAttribute("data-keeps-edits")) {
        if (!window.confirm("You have unsaved changes in the editor. Discard them?")) { event.preventDefault(); return; }
        dirty = null;
      }
      const question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });
  });
  const bad = document.querySelector(".field-error[id^='err-']");
  if (bad) {
    const name = bad.id.slice(4);
    const input = document.querySelector(`[name='${CSS.escape(name)}']`);
    if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", bad.id); input.focus(); }
  }
})();
