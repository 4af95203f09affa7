// grantflow's own script. Every page works without it; with it, times read in the viewer's zone and the request
// form sends the zone its date-time fields were filled in.
"use strict";

function showLocalTimes() {
  // dateStyle cannot be combined with timeZoneName, so the fields are named one by one.
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  for (const node of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) node.textContent = format.format(moment);
  }
}

function sendTimeZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
  for (const field of document.querySelectorAll("[data-tz-offset]")) {
    field.value = String(new Date().getTimezoneOffset());
  }
  for (const label of document.querySelectorAll("[data-tz-label]")) label.textContent = "(" + zone + ")";
}

function showFieldsOfGrantType() {
  const form = document.getElementById("request-form");
  if (!form) return;
  const update = () => {
    const chosen = form.querySelector("input[name=grant_type]:checked");
    for (const part of form.querySelectorAll("[data-for-grant]")) {
      part.hidden = !chosen || part.getAttribute("data-for-grant") !== chosen.value;
    }
  };
  form.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  showLocalTimes();
  sendTimeZone();
  showFieldsOfGrantType();
});
