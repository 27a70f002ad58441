// Staff sign-in and account pages. Talks to /api/auth/*; every unsafe request carries the CSRF token.
(function () {
  "use strict";

  const strings = JSON.parse(document.getElementById("strings").textContent);
  let csrf = null;

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf) headers["X-CSRF-Token"] = csrf;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, status: 0, data: { detail: strings["staff.error.network"] } };
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
    }
    return { ok: response.ok, status: response.status, data };
  }

  function say(element, text) {
    element.textContent = text || "";
    element.hidden = !text;
  }

  function describe(result) {
    const data = result.data || {};
    const lines = [data.detail || strings["staff.error.network"]];
    for (const problem of data.problems || []) lines.push("• " + problem.detail);
    return lines.join("\n");
  }

  function field(root, name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  // --- sign-in page ---------------------------------------------------------------------------------------
  const loginForm = document.getElementById("login-form");
  if (loginForm) {
    csrf = loginForm.elements.csrf_token.value;
    const error = loginForm.querySelector(".error");
    loginForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      say(error, "");
      const form = loginForm.elements;
      const result = await api("POST", "/api/auth/login", {
        username: form.username.value.trim(),
        password: form.password.value,
        totp_code: form.totp_code.value.trim() || null,
      });
      if (result.ok) {
        const next = result.data.restrictions.length ? "/staff/account" : loginForm.dataset.next;
        window.location.assign(next);
        return;
      }
      if (result.data && (result.data.code === "totp_required" || result.data.code === "totp_invalid")) {
        form.totp_code.value = "";
        form.totp_code.focus();
      } else {
        form.password.value = "";
        form.password.focus();
      }
      say(error, describe(result));
    });
  }

  // --- account page ---------------------------------------------------------------------------------------
  const account = document.getElementById("account");
  if (!account) return;

  async function load() {
    const result = await api("GET", "/api/auth/me");
    if (result.status === 401) {
      window.location.assign("/staff/login?next=/staff/account");
      return null;
    }
    if (!result.ok) return null;
    render(result.data);
    return result.data;
  }

  function render(me) {
    csrf = me.csrf_token;
    const user = me.user;
    field(account, "display").textContent = user.display_name || user.username;
    field(account, "username").textContent = user.display_name ? "(" + user.username + ")" : "";
    field(account, "role").textContent = strings["staff.role." + user.role] || user.role;
    const notices = document.getElementById("restrictions");
    notices.replaceChildren();
    for (const name of me.restrictions) {
      const item = document.createElement("li");
      item.textContent = strings["auth.error." + name] || name;
      notices.appendChild(item);
    }
    const mfaPending = me.restrictions.includes("totp_required");
    document.getElementById("verify-section").hidden = !mfaPending;
    document.getElementById("password-section").hidden = mfaPending || me.session.auth_method !== "password";
    document.getElementById("totp-section").hidden = mfaPending;
    field(account, "totp-state").textContent = user.totp_enabled ? strings["staff.totp.enabled"] : strings["staff.totp.disabled"];
    document.getElementById("totp-off").hidden = user.totp_enabled;
    document.getElementById("totp-disable-form").hidden = !user.totp_enabled;
    account.hidden = false;
  }

  function bind(formId, handler) {
    const form = document.getElementById(formId);
    const error = form.querySelector(".error");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      say(error, "");
      const message = await handler(form.elements);
      if (message) say(error, message);
    });
  }

  bind("verify-form", async function (form) {
    const result = await api("POST", "/api/auth/2fa/verify", { code: form.code.value.trim() });
    if (!result.ok) return describe(result);
    form.code.value = "";
    render(result.data);
    return "";
  });

  bind("password-form", async function (form) {
    const ok = document.querySelector("#password-form .ok");
    say(ok, "");
    if (form.new_password.value !== form.repeat_password.value) return strings["staff.password.mismatch"];
    const result = await api("POST", "/api/auth/password", {
      current_password: form.current_password.value,
      new_password: form.new_password.value,
    });
    if (!result.ok) return describe(result);
    for (const name of ["current_password", "new_password", "repeat_password"]) form[name].value = "";
    render(result.data);
    say(ok, strings["staff.password.saved"]);
    return "";
  });

  document.getElementById("totp-enroll").addEventListener("click", async function () {
    const form = document.getElementById("totp-confirm-form");
    const result = await api("POST", "/api/auth/2fa/enroll");
    if (!result.ok) {
      say(form.querySelector(".error"), describe(result));
      form.hidden = false;
      return;
    }
    field(form, "totp-secret").textContent = result.data.secret;
    field(form, "totp-uri").href = result.data.provisioning_uri;
    form.hidden = false;
    form.elements.code.focus();
  });

  bind("totp-confirm-form", async function (form) {
    const result = await api("POST", "/api/auth/2fa/confirm", { code: form.code.value.trim() });
    if (!result.ok) return describe(result);
    document.getElementById("totp-confirm-form").hidden = true;
    const list = field(account, "recovery-codes");
    list.replaceChildren();
    for (const code of result.data.recovery_codes) {
      const item = document.createElement("li");
      item.textContent = code;
      list.appendChild(item);
    }
    document.getElementById("totp-codes").hidden = false;
    render(result.data);
    return "";
  });

  bind("totp-disable-form", async function (form) {
    const result = await api("POST", "/api/auth/2fa/disable", {
      password: form.password.value,
      code: form.code.value.trim(),
    });
    if (!result.ok) return describe(result);
    form.password.value = "";
    form.code.value = "";
    await load();
    return "";
  });

  document.getElementById("logout").addEventListener("click", async function () {
    await api("POST", "/api/auth/logout");
    window.location.assign("/staff/login?erro=signed_out");
  });

  load();
})();
