// Progressive enhancement: keep the fee-cover sentence in step with the chosen amount.
// The form works the same without this file.
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
})();
