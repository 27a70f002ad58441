// What the console's pages share: JSON calls to the staff API carrying the session's CSRF token, and element
// building. Plain script, no build step; loaded before console.js and supervisor.js.
(function () {
  "use strict";

  let csrf = null;

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  window.AtendeStaff = {
    api,
    el,
    setCsrf(token) {
      csrf = token;
    },
  };
})();
