/* Reveals a question page's single simple follow-up as the resident answers the question it
   depends on (docs/DECISIONS.md, "Portal: applying"). Without this script the follow-up is shown
   with a note saying when to answer it, and the server decides either way.

   Answers are converted to the type the server compares (a yes/no answer to true/false, text
   NFKC-normalised) before the condition is evaluated: with raw form strings "true" == true flips. */
(function () {
  "use strict";
  if (!window.jsonLogic || !document.querySelectorAll) { return; }

  function answer(form, name, kind) {
    var inputs = form.querySelectorAll('[name="' + name + '"]');
    var value = null;
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      if ((input.type === "radio" || input.type === "checkbox") && !input.checked) { continue; }
      value = input.value;
      break;
    }
    if (value === null || value === "") { return null; }
    if (kind === "boolean") { return value === "true" ? true : (value === "false" ? false : null); }
    return value.normalize ? value.normalize("NFKC").trim() : value;
  }

  function update(followUp) {
    var form = followUp.form;
    var name = followUp.element.getAttribute("data-reads");
    var data = {};
    data[name] = answer(form, name, followUp.element.getAttribute("data-read-kind"));
    var shown;
    try {
      shown = window.jsonLogic.truthy(window.jsonLogic.apply(followUp.condition, data));
    } catch (error) {
      shown = true;
    }
    followUp.element.hidden = !shown;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var elements = document.querySelectorAll("[data-show-if]");
    for (var i = 0; i < elements.length; i++) {
      var element = elements[i];
      var form = element.closest ? element.closest("form") : null;
      if (!form) { continue; }
      var followUp;
      try {
        followUp = { element: element, form: form, condition: JSON.parse(element.getAttribute("data-show-if")) };
      } catch (error) {
        continue;
      }
      var note = element.querySelector(".conditional");
      if (note) { note.hidden = true; }
      update(followUp);
      form.addEventListener("change", update.bind(null, followUp));
    }
  });
}());
