// The supervisor's board: agents (online, paused, busy), queues, today's times, and the conversations being
// served, with reassign, step in and close. Plain script, no build step; data from /api/console/supervisor.
(function () {
  "use strict";

  const strings = JSON.parse(document.getElementById("strings").textContent);
  const $ = (id) => document.getElementById(id);
  let board = null;
  let editing = null;

  const { api, el } = window.AtendeStaff;

  function button(text, onClick, className) {
    const node = el("button", text, className);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function say(text) {
    $("status").textContent = text || "";
  }

  function failed(result) {
    say((result.data && result.data.detail) || strings["console.error"]);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const minutes = Math.floor(seconds / 60);
    return minutes ? minutes + " min " + Math.round(seconds % 60) + " s" : Math.round(seconds) + " s";
  }

  function agentChoice(exclude) {
    const select = el("select");
    select.setAttribute("aria-label", strings["supervisor.assign_to"]);
    for (const agent of board.agents) {
      if (agent.subject === exclude) continue;
      const option = el("option", agent.name + " (" + strings["supervisor.status." + agent.status] + ")");
      option.value = agent.subject;
      select.append(option);
    }
    return select;
  }

  function renderToday(today) {
    const box = $("today");
    box.replaceChildren();
    const figures = [
      ["supervisor.handoffs", today.handoffs],
      ["supervisor.closed", today.closed],
      ["supervisor.abandoned", today.abandoned],
      ["supervisor.mean_wait", duration(today.mean_wait_s)],
      ["supervisor.longest_wait", duration(today.longest_wait_s)],
      ["supervisor.mean_first_response", duration(today.mean_first_response_s)],
      ["supervisor.mean_handling", duration(today.mean_handling_s)],
    ];
    for (const [key, value] of figures) {
      box.append(el("dt", strings[key]));
      box.append(el("dd", value));
    }
  }

  function renderQueues() {
    const body = $("queues").tBodies[0];
    body.replaceChildren();
    const teams = Object.keys(board.queues).sort();
    if (!teams.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 3;
      cell.textContent = strings["console.empty_queue"];
    }
    for (const team of teams) {
      const row = body.insertRow();
      row.insertCell().textContent = team;
      row.insertCell().textContent = board.queues[team].size;
      row.insertCell().textContent = duration(board.queues[team].longest_wait_s);
    }
    const list = $("waiting");
    list.replaceChildren();
    for (const item of board.waiting) {
      const li = el("li");
      li.dataset.conversation = item.conversation_id;
      li.append(el("span", item.team + " · " + strings["console.position"] + " " + item.position + " · "));
      li.append(el("span", duration(item.waited_s), "muted"));
      const choice = agentChoice(null);
      li.append(choice);
      li.append(button(strings["supervisor.assign"], () => reassign(item.conversation_id, choice.value), "assign"));
      list.append(li);
    }
  }

  function renderAgents() {
    const body = $("agents").tBodies[0];
    body.replaceChildren();
    for (const agent of board.agents) {
      const row = body.insertRow();
      row.dataset.agent = agent.subject;
      row.insertCell().textContent = agent.name;
      const status = row.insertCell();
      status.textContent = strings["supervisor.status." + agent.status];
      status.className = "status " + agent.status;
      row.insertCell().textContent = agent.load + " / " + agent.capacity;
      row.insertCell().textContent = agent.teams.join(", ");
      row.insertCell().textContent = agent.languages.join(", ");
      row.insertCell().append(button(strings["supervisor.edit"], () => editProfile(agent), "secondary"));
    }
  }

  function renderServed() {
    const list = $("served");
    list.replaceChildren();
    if (!board.served.length) list.append(el("li", strings["supervisor.none_served"], "muted"));
    const reasons = $("close-reasons").innerHTML;
    for (const item of board.served) {
      const li = el("li", null, "served");
      li.dataset.conversation = item.conversation_id;
      li.append(el("strong", item.agent_name + " · " + item.team));
      li.append(el("span", " " + strings["supervisor.handling"] + " " + duration(item.handling_s), "muted"));
      const actions = el("div", null, "actions");
      const choice = agentChoice(item.agent);
      actions.append(choice);
      actions.append(button(strings["supervisor.reassign"], () => reassign(item.conversation_id, choice.value)));
      actions.append(button(strings["supervisor.take_over"], () => reassign(item.conversation_id, "me"), "secondary"));
      const message = el("input");
      message.maxLength = 4000;
      message.placeholder = strings["supervisor.intervene_placeholder"];
      message.className = "intervene-text";
      actions.append(message);
      actions.append(button(strings["supervisor.intervene"], () => intervene(item.conversation_id, message), "secondary"));
      const reason = el("select");
      reason.innerHTML = reasons;
      reason.setAttribute("aria-label", strings["console.close_reason"]);
      actions.append(reason);
      actions.append(button(strings["console.close"], () => closeConversation(item.conversation_id, reason.value), "danger"));
      li.append(actions);
      list.append(li);
    }
  }

  async function load() {
    const result = await api("GET", "/api/console/supervisor");
    if (!result.ok) return failed(result);
    board = result.data;
    renderToday(board.today);
    renderQueues();
    renderAgents();
    renderServed();
  }

  async function reassign(conversationId, agent) {
    if (!agent) return;
    const path = "/api/console/supervisor/conversations/" + encodeURIComponent(conversationId) + "/reassign";
    const result = await api("POST", path, { agent });
    if (!result.ok) return failed(result);
    say(strings["supervisor.reassigned"]);
    if (agent === "me") window.location.assign("/console");
    else load();
  }

  async function intervene(conversationId, input) {
    const text = input.value.trim();
    if (!text) return;
    const path = "/api/console/supervisor/conversations/" + encodeURIComponent(conversationId) + "/messages";
    const result = await api("POST", path, { text });
    if (!result.ok) return failed(result);
    input.value = "";
    say(strings["console.sent"]);
  }

  async function closeConversation(conversationId, reason) {
    const path = "/api/console/supervisor/conversations/" + encodeURIComponent(conversationId) + "/close";
    const result = await api("POST", path, { reason });
    if (!result.ok) return failed(result);
    say(strings["console.closed"]);
    load();
  }

  function editProfile(agent) {
    editing = agent.subject;
    $("profile-title").textContent = agent.name;
    $("profile-teams").value = agent.teams.join(", ");
    $("profile-capacity").value = agent.capacity;
    $("profile-languages").value = agent.languages.join(", ");
    $("profile-skills").value = agent.skills.join(", ");
    $("profile-form").hidden = false;
  }

  const listOf = (text) =>
    text
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean);

  async function start() {
    const me = await api("GET", "/api/auth/me");
    if (me.status === 401) {
      window.location.assign("/staff/login?next=/console/supervisor");
      return;
    }
    window.AtendeStaff.setCsrf(me.data.csrf_token);
    $("who").textContent = me.data.user.display_name || me.data.user.username;
    $("profile-cancel").addEventListener("click", () => ($("profile-form").hidden = true));
    $("profile-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const path = "/api/console/agents/" + encodeURIComponent(editing) + "/profile";
      const result = await api("PUT", path, {
        teams: listOf($("profile-teams").value),
        capacity: Number($("profile-capacity").value),
        languages: listOf($("profile-languages").value),
        skills: listOf($("profile-skills").value),
      });
      if (!result.ok) return failed(result);
      $("profile-form").hidden = true;
      say(strings["supervisor.saved"]);
      load();
    });
    await load();
    // Queue changes arrive as server-sent events; the clock-driven figures (waits) refresh every 10 s.
    const stream = new EventSource("/api/console/events?wait=30");
    for (const kind of ["queued", "assigned", "closed", "abandoned", "reassigned", "presence"]) {
      stream.addEventListener(kind, load);
    }
    setInterval(load, 10000);
  }

  start();
})();
