// The resident app's map: offer the browser's position when it can give one. Nothing is sent anywhere but
// this platform's own /app/map, and only when the resident presses the button and the browser allows it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("map-search");
  const button = document.getElementById("locate");
  if (!form || !button || !("geolocation" in navigator)) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    button.disabled = true;
    navigator.geolocation.getCurrentPosition((position) => {
      form.elements.latitude.value = position.coords.latitude.toFixed(6);
      form.elements.longitude.value = position.coords.longitude.toFixed(6);
      form.submit();
    }, () => {
      button.disabled = false;
      document.getElementById("where").textContent = "无法获取您的位置，已按所选区的中心位置查找。";
    }, { timeout: 10000, maximumAge: 300000 });
  });
});
