// The agents' console: queue, conversation, summary, citizen card, copilot. Plain script, no build step.
// Talks to /api/console/*; every unsafe request carries the session's CSRF token. Nothing is sent automatically:
// a copilot suggestion only fills the reply box, which the agent edits and sends.
(function () {
  "use strict";

  const strings = JSON.parse(document.getElementById("strings").textContent);
  const $ = (id) => document.getElementById(id);
  let current = null;
  let suggested = "";
  let stream = null;
  let permissions = [];
  let repliesTeam = null;
  let repliesTimer = null;

  const { api, el } = window.AtendeStaff;

  function say(text) {
    $("status").textContent = text || "";
  }

  function failed(result) {
    say((result.data && result.data.detail) || strings["console.error"]);
  }

  async function loadQueue() {
    const result = await api("GET", "/api/console/queue");
    if (!result.ok) return failed(result);
    const queue = $("queue");
    queue.replaceChildren();
    if (!result.data.waiting.length) queue.append(el("li", strings["console.empty_queue"], "empty"));
    for (const item of result.data.waiting) {
      const li = el("li");
      li.dataset.conversation = item.conversation_id;
      li.append(el("span", strings["console.position"] + " " + item.position + " · " + item.team + " · " + item.reason));
      li.append(el("span", " " + strings["console.waited"] + " " + Math.round(item.waited_s) + " s", "muted"));
      const take = el("button", strings["console.claim"]);
      take.type = "button";
      take.className = "claim";
      take.addEventListener("click", () => claim(item.conversation_id));
      li.append(take);
      queue.append(li);
    }
    const mine = $("mine");
    mine.replaceChildren();
    for (const item of result.data.mine) {
      const li = el("li");
      const open = el("button", strings["console.open"] + " · " + item.team);
      open.type = "button";
      open.addEventListener("click", () => openConversation(item.conversation_id));
      li.append(open);
      mine.append(li);
    }
  }

  async function claim(conversationId) {
    const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(conversationId) + "/claim");
    if (!result.ok) {
      failed(result);
      return loadQueue();
    }
    await loadQueue();
    await openConversation(conversationId);
  }

  function renderSummary(summary) {
    const box = $("summary");
    box.replaceChildren();
    const section = (key, items) => {
      box.append(el("h3", strings[key]));
      const list = el("ul");
      if (!items.length) list.append(el("li", strings["console.summary.none"], "muted"));
      for (const item of items) list.append(el("li", item));
      box.append(list);
    };
    section("console.summary.reason", summary.reason);
    section(
      "console.summary.answers",
      summary.answers.map((a) => a.text + (a.citations.length ? " — " + a.citations.map((c) => c.title).join("; ") : ""))
    );
    section("console.summary.data", summary.data.map((d) => d.kind + " × " + d.count));
    section("console.summary.pending", summary.pending ? [summary.pending] : []);
  }

  function renderSentiment(sentiment) {
    const box = $("summary");
    if (!sentiment || !sentiment.latest) return;
    box.append(el("h3", strings["console.summary.sentiment"]));
    const line = strings["console.sentiment." + sentiment.latest] + " · " + strings["console.trend." + sentiment.trend];
    box.append(el("p", line, "sentiment " + sentiment.latest));
  }

  // The other side's version of a message: a citizen's, translated for the agent; an agent's, as the citizen got it.
  function renderTranslation(message) {
    const name = (code) => strings["console.language." + code] || code;
    const key = message.role === "agent" ? "console.translation_sent" : "console.translation";
    const label = strings[key]
      .replace("{source}", name(message.language))
      .replace("{target}", name(message.translation_language));
    const box = el("div", null, "translation");
    box.lang = message.translation_language || "";
    box.append(el("small", label, "muted"));
    box.append(el("p", message.translation));
    return box;
  }

  async function openConversation(conversationId) {
    const result = await api("GET", "/api/console/conversations/" + encodeURIComponent(conversationId));
    if (!result.ok) return failed(result);
    current = result.data;
    if ($("action-form").dataset.conversation !== current.id) $("action-form").hidden = true;
    showSavedReplies(current);
    $("conversation-panel").hidden = false;
    $("side-panel").hidden = false;
    const list = $("messages");
    list.replaceChildren();
    for (const message of current.messages) {
      const li = el("li", null, "message " + message.role);
      li.append(el("strong", strings["console.role." + message.role] || message.role));
      li.append(el("p", message.text));
      if (message.translation) li.append(renderTranslation(message));
      if (message.sentiment) li.dataset.sentiment = message.sentiment;
      list.append(li);
    }
    list.scrollTop = list.scrollHeight;
    renderSummary(current.summary);
    renderSentiment(current.sentiment);
    const card = $("citizen");
    card.replaceChildren();
    for (const item of current.citizen.data) card.append(el("li", item.kind + ": " + item.value));
    const notes = $("notes");
    notes.replaceChildren();
    for (const note of current.notes) notes.append(el("li", note.text, "note"));
    listen(conversationId);
  }

  // Saved replies of the conversation's team: a click only fills the reply box, which the agent edits and sends.
  function showSavedReplies(conversation) {
    const last = conversation.handoffs.length ? conversation.handoffs[conversation.handoffs.length - 1] : null;
    const team = last ? last.team : null;
    if (team === repliesTeam) return;
    repliesTeam = team;
    $("saved-replies-team").textContent = team ? "· " + team : "";
    $("saved-replies-query").value = "";
    loadSavedReplies();
  }

  async function loadSavedReplies() {
    const list = $("saved-replies");
    if (!repliesTeam) return list.replaceChildren();
    const query = new URLSearchParams({ team: repliesTeam, q: $("saved-replies-query").value.trim() });
    const result = await api("GET", "/api/console/saved-replies?" + query.toString());
    if (!result.ok) return failed(result);
    list.replaceChildren();
    if (!result.data.replies.length) list.append(el("li", strings["console.saved_replies.none"], "muted"));
    for (const reply of result.data.replies) {
      const li = el("li", null, "saved-reply");
      li.append(el("strong", reply.title));
      li.append(el("p", reply.text, "muted"));
      const use = el("button", strings["console.saved_replies.use"], "secondary");
      use.type = "button";
      use.addEventListener("click", () => {
        $("reply").value = reply.text;
        $("reply").focus();
        say(strings["console.saved_replies.filled"]);
      });
      li.append(use);
      list.append(li);
    }
  }

  async function saveReply(event) {
    event.preventDefault();
    if (!repliesTeam) return;
    const result = await api("POST", "/api/console/saved-replies", {
      team: repliesTeam,
      title: $("saved-reply-title").value,
      text: $("saved-reply-text").value,
    });
    if (!result.ok) return failed(result);
    $("saved-reply-title").value = "";
    $("saved-reply-text").value = "";
    say(strings["console.saved_replies.saved"]);
    loadSavedReplies();
  }

  async function reveal() {
    if (!current) return;
    const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(current.id) + "/reveal");
    if (!result.ok) return failed(result);
    const card = $("citizen");
    card.replaceChildren();
    for (const item of result.data.data) card.append(el("li", item.kind + ": " + item.value));
  }

  async function suggest() {
    if (!current) return;
    const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(current.id) + "/suggestion");
    if (!result.ok) return failed(result);
    suggested = result.data.text;
    $("suggestion").textContent = suggested || strings["console.no_suggestion"];
    $("use-suggestion").hidden = !suggested;
    const cites = $("suggestion-citations");
    cites.replaceChildren();
    for (const c of result.data.citations) cites.append(el("li", "[" + c.n + "] " + c.title + " (" + strings["console.audience." + c.audience] + ")"));
    const actions = $("suggestion-actions");
    actions.replaceChildren();
    for (const a of result.data.actions) {
      const li = el("li");
      const button = el("button", a.label, "secondary action");
      button.type = "button";
      button.dataset.action = a.action;
      button.addEventListener("click", () => openAction(a.action));
      li.append(button);
      actions.append(li);
    }
  }

  // A tool action: its draft fills the form, the agent edits it, "Executar" runs it and the answer only fills the
  // reply box (the agent still reviews and sends it).
  function actionPath(conversationId, name) {
    return "/api/console/conversations/" + encodeURIComponent(conversationId) + "/actions/" + name;
  }

  async function openAction(name) {
    if (!current) return;
    const form = $("action-form");
    const result = await api("GET", actionPath(current.id, name));
    if (!result.ok) return failed(result);
    const draft = result.data;
    form.dataset.action = name;
    form.dataset.conversation = current.id;
    $("action-protocol-fields").hidden = name !== "open_protocol";
    $("action-copy-fields").hidden = true;
    $("action-verify-fields").hidden = true;
    const run = $("action-run");
    run.dataset.label = run.dataset.label || run.textContent;
    run.textContent = run.dataset.label;
    run.hidden = false;
    if (name === "open_protocol") {
      const select = $("action-service");
      select.replaceChildren(new Option(strings["console.actions.choose_service"], ""));
      for (const service of draft.services) {
        select.append(new Option(service.name + " · " + service.team_name, service.code));
      }
      select.value = draft.service || "";
      $("action-description").value = draft.description;
      $("action-address").value = draft.address || "";
      $("action-notice").textContent = draft.notice;
    } else {
      const select = $("action-debt");
      select.replaceChildren();
      for (const debt of draft.debts) {
        const label = strings["console.actions.debt_option"]
          .replace("{reference}", debt.reference)
          .replace("{amount}", debt.amount_text)
          .replace("{due}", debt.due_text)
          .replace("{status}", debt.status);
        select.append(new Option(label, debt.debt_id));
      }
      const usable = draft.identified && draft.debts.length > 0;
      $("action-copy-fields").hidden = !usable;
      $("action-run").hidden = !usable;
      $("action-notice").textContent = draft.detail || "";
      if (!draft.identified) {
        // Nobody identified: the agent types the CPF and birth date the citizen told them, verified first.
        form.dataset.action = "verify_identity";
        $("action-cpf").value = "";
        $("action-birth-date").value = "";
        $("action-verify-fields").hidden = false;
        run.textContent = strings["console.actions.verify.run"];
        run.hidden = false;
      }
    }
    form.hidden = false;
  }

  async function runAction(event) {
    event.preventDefault();
    const form = $("action-form");
    const conversationId = form.dataset.conversation;
    if (!current || conversationId !== current.id) return;
    const name = form.dataset.action;
    const body =
      name === "open_protocol"
        ? {
            service: $("action-service").value,
            description: $("action-description").value,
            address: $("action-address").value.trim() || null,
          }
        : name === "verify_identity"
          ? { cpf: $("action-cpf").value, birth_date: $("action-birth-date").value }
          : { debt_id: $("action-debt").value };
    const result = await api("POST", actionPath(conversationId, name), body);
    if (!result.ok) {
      $("action-notice").textContent = (result.data && result.data.detail) || strings["console.error"];
      return failed(result);
    }
    if (name === "verify_identity") {
      $("action-cpf").value = "";
      $("action-birth-date").value = "";
      $("reply").value = result.data.text;
      await openAction("second_copy"); // now identified: the citizen's debts to choose from
      $("action-notice").textContent = result.data.detail;
      say(strings["console.actions.filled"]);
      return;
    }
    form.hidden = true;
    $("reply").value = result.data.text;
    $("reply").focus();
    say(strings["console.actions.filled"]);
  }

  function listen(conversationId) {
    if (stream) stream.close();
    stream = new EventSource("/api/console/events?wait=30&conversation_id=" + encodeURIComponent(conversationId));
    const refresh = () => {
      loadQueue();
      if (current) openConversation(current.id);
    };
    for (const kind of ["message", "translated", "queued", "assigned", "closed", "note", "abandoned"]) {
      stream.addEventListener(kind, refresh);
    }
  }

  async function start() {
    const me = await api("GET", "/api/auth/me");
    if (me.status === 401) {
      window.location.assign("/staff/login?next=/console");
      return;
    }
    window.AtendeStaff.setCsrf(me.data.csrf_token);
    $("who").textContent = me.data.user.display_name || me.data.user.username;
    $("presence").addEventListener("change", (event) =>
      api("POST", "/api/console/presence", { status: event.target.value })
    );
    $("reveal").addEventListener("click", reveal);
    permissions = me.data.permissions || [];
    $("saved-reply-form").hidden = !permissions.includes("saved_replies.manage");
    $("saved-reply-form").addEventListener("submit", saveReply);
    $("saved-replies-query").addEventListener("input", () => {
      clearTimeout(repliesTimer);
      repliesTimer = setTimeout(loadSavedReplies, 250);
    });
    $("suggest").addEventListener("click", suggest);
    $("action-form").addEventListener("submit", runAction);
    $("action-cancel").addEventListener("click", () => {
      $("action-form").hidden = true;
    });
    $("use-suggestion").addEventListener("click", () => {
      $("reply").value = suggested;
      $("reply").focus();
    });
    $("reply-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = $("reply").value.trim();
      if (!current || !text) return;
      const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(current.id) + "/messages", {
        text,
      });
      if (!result.ok) return failed(result);
      $("reply").value = "";
      say(strings["console.sent"]);
      openConversation(current.id);
    });
    $("note-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = $("note").value.trim();
      if (!current || !text) return;
      const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(current.id) + "/notes", {
        text,
      });
      if (!result.ok) return failed(result);
      $("note").value = "";
      openConversation(current.id);
    });
    $("transfer-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const team = $("team").value.trim();
      if (!current || !team) return;
      const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(current.id) + "/transfer", {
        team,
      });
      if (!result.ok) return failed(result);
      loadQueue();
    });
    $("close-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!current) return;
      const result = await api("POST", "/api/console/conversations/" + encodeURIComponent(current.id) + "/close", {
        reason: $("close-reason").value,
      });
      if (!result.ok) return failed(result);
      const number = result.data.protocol_number;
      say(number ? strings["console.closed_protocol"].replace("{number}", number) : strings["console.closed"]);
      loadQueue();
    });
    // Presence is also the heartbeat: the server forgets an agent whose console stops beating (closed tab, lost
    // network), so routing never waits on someone who is gone.
    const beat = await api("POST", "/api/console/presence", { status: "online" });
    const every = Math.max(5, ((beat.ok && beat.data.ttl_s) || 60) / 3) * 1000;
    setInterval(() => api("POST", "/api/console/presence", { status: $("presence").value }), every);
    if (me.data.user.role === "supervisor") $("supervisor-link").hidden = false;
    await loadQueue();
    const queueStream = new EventSource("/api/console/events?wait=30");
    for (const kind of ["queued", "assigned", "closed", "abandoned", "reassigned", "requeued"]) {
      queueStream.addEventListener(kind, loadQueue);
    }
  }

  start();
})();
