// The token travels once, in an Authorization header (never in a URL); the answer sets an
// HttpOnly SameSite=Strict session cookie that no script can read.
"use strict";
(() => {
  const token = document.getElementById("token");
  const error = document.getElementById("login-error");
  async function login() {
    error.hidden = true;
    const answer = await fetch("/tech/login", {
      headers: { Authorization: `Bearer ${token.value}` },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (answer.status === 204) {
      location.reload();
      return;
    }
    token.value = "";
    error.textContent = (await answer.text()).trim() || `refused (${answer.status})`;
    error.hidden = false;
  }
  document.getElementById("login").addEventListener("click", login);
  token.addEventListener("keydown", (event) => { if (event.key === "Enter") login(); });
})();
