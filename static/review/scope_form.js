// The scope form shows only the fields that apply to the chosen effect: the approval timeout,
// what happens on timeout and the escalation team matter only to rules that wait for approvers
// (and the team only when the timeout escalates).
(function () {
  var form = document.querySelector("form.stacked");
  if (!form) return;
  var effect = form.querySelector("[name=effect]");
  var onTimeout = form.querySelector("[name=on_timeout]");
  function sync() {
    var approval = effect && /^require_/.test(effect.value);
    form.querySelectorAll("[data-applies=approval]").forEach(function (el) {
      var show = approval;
      if (show && el.hasAttribute("data-applies-escalation") && onTimeout) {
        show = onTimeout.value === "escalate";
      }
      el.hidden = !show;
    });
  }
  if (effect) effect.addEventListener("change", sync);
  if (onTimeout) onTimeout.addEventListener("change", sync);
  sync();
})();
