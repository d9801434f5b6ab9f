// After a form comes back with errors, move the focus to the summary of them (or, on a page
// without one, to the first error), so that a screen reader announces it and a keyboard reader
// starts there: the summary's links lead to each field.
(function () {
  "use strict";
  var summary = document.querySelector(".form-errors") || document.querySelector(".field-error:not([hidden])");
  if (!summary) { return; }
  if (!summary.hasAttribute("tabindex")) { summary.setAttribute("tabindex", "-1"); }
  summary.focus();
})();

// The gift page. Progressive enhancement: keep the fee-cover sentence in step with the chosen
// amount, show the chosen frequency's amounts, and split the form in two steps. The form works
// the same without this script.
(function () {
  "use strict";
  var form = document.querySelector("form.gift-form");
  if (!form) { return; }
  var percent = form.getAttribute("data-fee-percent");
  var fixed = parseInt(form.getAttribute("data-fee-fixed"), 10);
  var feeOut = form.querySelector("[data-fee-amount]");
  var baseOut = form.querySelector("[data-fee-base]");

  function cents(text) {
    text = text.trim();
    // A comma only as a thousands separator, as the server reads it ("20,5" is not 205).
    if (text.indexOf(",") >= 0 && !/^\$?\s*\d{1,3}(,\d{3})+(\.\d*)?$/.test(text)) { return null; }
    var m = /^\$?\s*(\d{1,9})(?:\.(\d{1,2}))?$/.exec(text.replace(/,/g, ""));
    if (!m) { return null; }
    return parseInt(m[1], 10) * 100 + parseInt((m[2] || "").padEnd(2, "0") || "0", 10);
  }
  // Same arithmetic as donations.money.fee_to_cover, in integers: ceil((a + f) / (1 - r)) - a,
  // with the rate as a fraction of 10,000 so that no float rounding creeps in.
  function fee(amount) {
    var parts = percent.split(".");
    var basisPoints = parseInt(parts[0], 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
    var numerator = (amount + fixed) * 10000;
    var denominator = 10000 - basisPoints;
    return Math.ceil(numerator / denominator) - amount;
  }
  function money(c) { return "$" + (c / 100).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function update() {
    var chosen = form.querySelector("input[name=amount_choice]:checked");
    var amount = null;
    if (chosen && chosen.value !== "other") { amount = parseInt(chosen.value, 10); }
    else { amount = cents(form.querySelector("input[name=custom_amount]").value || ""); }
    if (amount === null || amount <= 0) { return; }
    feeOut.textContent = money(fee(amount));
    baseOut.textContent = money(amount);
  }
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  // Typing an amount chooses "Other amount"; merely passing through the box (Tab) does not, so
  // a keyboard reader keeps the amount picked above.
  var custom = form.querySelector("input[name=custom_amount]");
  custom.addEventListener("input", function () {
    var other = form.querySelector("input[name=amount_choice][value=other]");
    if (other && custom.value.trim() !== "") { other.checked = true; update(); }
  });
  update();

  // The amounts follow the chosen frequency: only its suggestions show (without this file the
  // page shows those of the frequency it was opened with, and every amount is still accepted).
  var prompt = form.querySelector("[data-monthly-prompt]");
  function showAmountsFor(frequency) {
    var buttons = form.querySelectorAll(".amount-button[data-frequencies]");
    var visible = [];
    var checkedHidden = false;
    buttons.forEach(function (label) {
      var offered = (label.getAttribute("data-frequencies") || "").split(" ").indexOf(frequency) >= 0;
      var input = label.querySelector("input");
      label.hidden = !offered;
      if (offered) { visible.push(input); } else if (input.checked) { checkedHidden = true; }
    });
    if (checkedHidden && visible.length) { visible[Math.min(1, visible.length - 1)].checked = true; update(); }
    if (prompt) { prompt.hidden = frequency !== "one_time"; }
  }
  form.querySelectorAll("input[name=frequency]").forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) { showAmountsFor(radio.value); } });
  });
  // Two steps: the choice of gift, then the rest (the reader's details, the fee, the dedication).
  // Only where the page allows it (data-steps: not after errors or for a resumed gift). Continue
  // checks the amount, pushes a history entry (so the browser's Back returns to step one) and
  // moves the focus to step two's heading; "Change the amount" goes back the same way.
  if (!form.hasAttribute("data-steps")) { return; }
  var one = document.getElementById("step-one");
  var two = document.getElementById("step-two");
  var heading = document.getElementById("step-two-heading");
  var problem = document.getElementById("step-one-error");
  var summary = two.querySelector("[data-summary]");
  var minimum = parseInt(form.getAttribute("data-minimum"), 10);
  var maximum = parseInt(form.getAttribute("data-maximum"), 10);
  var every = { one_time: "once", monthly: "every month", annual: "every year" };
  function dollars(c) { return c % 100 === 0 ? "$" + (c / 100).toLocaleString("en-US") : money(c); }
  function chosenAmount() {
    var chosen = form.querySelector("input[name=amount_choice]:checked");
    if (!chosen) { return null; }
    return chosen.value !== "other" ? parseInt(chosen.value, 10) : cents(custom.value || "");
  }
  function amountProblem(amount) {
    if (amount !== null && amount >= minimum && amount <= maximum) { return ""; }
    return "Choose an amount, or enter one from " + dollars(minimum) + " to " + dollars(maximum) + ".";
  }
  function show(step, moveFocus) {
    one.hidden = step !== 1;
    two.hidden = step !== 2;
    if (!moveFocus) { return; }
    if (step === 2) { heading.focus(); } else { document.querySelector(".give-title").focus(); }
  }
  function next() {
    var amount = chosenAmount();
    var message = amountProblem(amount);
    problem.textContent = message;
    problem.hidden = !message;
    custom.removeAttribute("aria-invalid");
    if (message) {
      custom.setAttribute("aria-invalid", "true");
      var chosen = form.querySelector("input[name=amount_choice]:checked");
      (chosen ? custom : form.querySelector(".amount-button:not([hidden]) input")).focus();
      return;
    }
    var frequency = form.querySelector("input[name=frequency]:checked") || form.querySelector("input[name=frequency]");
    summary.textContent = dollars(amount) + " " + (every[frequency.value] || "");
    history.pushState({ giftStep: 2 }, "");
    show(2, true);
  }
  // The Other amount box shows once "Other amount" is chosen (or holds an amount), so that
  // Continue stays in a phone's first screen.
  var otherBox = custom.closest(".other-amount");
  function showOtherBox() {
    var other = form.querySelector("input[name=amount_choice][value=other]");
    otherBox.hidden = !(other && other.checked) && custom.value.trim() === "";
  }
  form.querySelectorAll("input[name=amount_choice]").forEach(function (radio) {
    radio.addEventListener("change", showOtherBox);
  });
  showOtherBox();
  form.querySelector("[data-step-next]").addEventListener("click", next);
  form.querySelector("[data-step-back]").addEventListener("click", function () {
    if (history.state && history.state.giftStep === 2) { history.back(); } else { show(1, true); }
  });
  window.addEventListener("popstate", function (event) {
    if (event.state && event.state.giftStep === 2 && !amountProblem(chosenAmount())) { show(2, true); } else { show(1, true); }
  });
  // Enter in a step-one field (the Other amount box) continues rather than sending half a form.
  form.addEventListener("submit", function (event) {
    if (two.hidden) { event.preventDefault(); next(); }
  });
  one.querySelector(".step-next").hidden = false;
  two.querySelector(".step-summary").hidden = false;
  show(history.state && history.state.giftStep === 2 && !amountProblem(chosenAmount()) ? 2 : 1, false);
})();
