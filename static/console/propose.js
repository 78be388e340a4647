// The propose form shows the parameter fields of the chosen action only; hidden sets are
// disabled so they are not submitted.
(function () {
  function sync(form) {
    var chosen = form.querySelector("select[name=action]").value;
    form.querySelectorAll("fieldset.params").forEach(function (set) {
      var on = set.dataset.action === chosen;
      set.hidden = !on;
      set.disabled = !on;
    });
  }
  function wire(root) {
    var form = (root || document).querySelector("#propose-form");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    form.querySelector("select[name=action]").addEventListener("change", function () { sync(form); });
    sync(form);
  }
  wire(document);
  document.addEventListener("htmx:afterSettle", function () { wire(document); });
})();
