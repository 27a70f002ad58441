// Atende web chat: the citizen-facing conversation UI.
//
// Plain ES2020 module, no build step and no dependencies. It renders the whole
// chat (header, message log, composer) inside a root element and talks to the
// Atende HTTP API:
//   POST /api/conversations                        -> {id}
//   POST /api/conversations/{id}/messages/stream   -> text/event-stream (token/done/error)
//   POST /api/conversations/{id}/messages          -> reply JSON (fallback)
//   GET  /api/conversations/{id}                   -> history (restore after reload)
//
// The id alone opens nothing: creating a conversation binds it to this
// browser's chat key, an HttpOnly cookie the script never sees, and every
// /api/conversations/{id}... call must carry it (credentials: 'same-origin';
// the API is same-origin, it sends no CORS headers). The id is kept in
// sessionStorage so a reload finds the conversation again; a 404 means the
// key is gone (cookies cleared or blocked) and the chat starts over.
//
// Security rule: text coming from the citizen or from the model is NEVER parsed
// as HTML. Everything is built with DOM nodes and textContent.
//
// Usage: any element with [data-atende-chat] is mounted automatically when this
// module loads; or import {mountChat} and call it yourself.

export const DEFAULT_LANG = 'pt-BR';
export const DEFAULT_MAX_CHARS = 2000;
const STORAGE_KEY = 'atende.conversationId';
const DECISIONS = new Set(['answered', 'abstained', 'handoff', 'smalltalk', 'error']);
const HANDOFF_DECISIONS = new Set(['abstained', 'handoff']);
// Show the character counter once the text reaches this share of the limit.
const COUNTER_THRESHOLD = 0.8;
// Abort a request when the server sends nothing for this long (the SSE stream
// resets the timer on every chunk, including keep-alive comments).
const DEFAULT_IDLE_TIMEOUT_MS = 120000;
const TEXTAREA_MAX_HEIGHT_PX = 160;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/**
 * Create an element. `props` keys: `class`, `text`, `dataset`, `on<Event>`
 * handlers, boolean/string attributes. Children may be nodes or strings
 * (strings always become text nodes).
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(parent, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

let idCounter = 0;
function uid(prefix) {
  idCounter += 1;
  return `atende-${prefix}-${idCounter}`;
}

/** Normalise a BCP 47 tag ("pt-br" -> "pt-BR"); returns '' when it is not a plausible tag. */
export function normalizeLang(tag) {
  if (typeof tag !== 'string') return '';
  const trimmed = tag.trim().replace(/_/g, '-');
  if (!/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$/.test(trimmed)) return '';
  const parts = trimmed.split('-');
  return parts
    .map((part, i) => {
      if (i === 0) return part.toLowerCase();
      if (part.length === 2) return part.toUpperCase();
      if (part.length === 4) return part[0].toUpperCase() + part.slice(1).toLowerCase();
      return part.toLowerCase();
    })
    .join('-');
}

/** Accept only http(s) URLs (absolute or relative to the page); anything else yields null. */
export function safeUrl(raw) {
  if (typeof raw !== 'string' || raw.trim() === '') return null;
  try {
    const url = new URL(raw.trim(), document.baseURI);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Parse a server timestamp. ISO strings without a zone are taken as UTC
 * (the usual case for naive datetimes stored by the backend).
 */
export function parseTimestamp(value) {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value !== 'string' || value === '') return null;
  let text = value.trim();
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(text) && !/(Z|[+-]\d{2}:?\d{2})$/i.test(text)) {
    text = `${text.replace(' ', 'T')}Z`;
  }
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

// One id per message the citizen sends, kept for its retries: the server answers a repeated id once.
function newMessageId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function readStorage(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch {
    return null; // storage can be blocked (privacy settings, sandboxed iframes)
  }
}

function writeStorage(key, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(key);
    else window.sessionStorage.setItem(key, value);
  } catch {
    // Without storage the conversation simply does not survive a reload.
  }
}

function prefersReducedMotion() {
  return Boolean(window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches);
}

function isCoarsePointer() {
  return Boolean(window.matchMedia && window.matchMedia('(pointer: coarse)').matches);
}

// ---------------------------------------------------------------------------
// Localisation
// ---------------------------------------------------------------------------

async function fetchJSON(url) {
  const res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
  return res.json();
}

/**
 * Load `locales/{lang}.json` (relative to `baseUrl`) on top of the pt-BR file,
 * so a partial translation falls back to pt-BR key by key.
 * Resolves to {lang, dir, strings}.
 */
export async function loadLocale(lang, baseUrl = new URL('./', import.meta.url).href) {
  const wanted = normalizeLang(lang) || DEFAULT_LANG;
  const urlFor = (code) => new URL(`locales/${code}.json`, baseUrl).href;
  const candidates = [wanted];
  const primary = wanted.split('-')[0];
  if (primary !== wanted) candidates.push(primary); // "es-AR" -> "es"

  const fallbackPromise = fetchJSON(urlFor(DEFAULT_LANG));
  let chosen = null;
  let chosenLang = DEFAULT_LANG;
  for (const code of candidates) {
    if (code === DEFAULT_LANG) break;
    try {
      chosen = await fetchJSON(urlFor(code));
      chosenLang = code;
      break;
    } catch {
      // Try the next candidate, then pt-BR.
    }
  }
  const fallback = await fallbackPromise;
  const strings = chosen ? { ...fallback, ...chosen } : fallback;
  const meta = (chosen && chosen._meta) || fallback._meta || {};
  return {
    lang: meta.lang || chosenLang,
    dir: meta.dir === 'rtl' ? 'rtl' : 'ltr',
    strings,
  };
}

/** Build t(key, vars): looks up a string and fills {placeholders}. */
export function createTranslator(strings) {
  const warned = new Set();
  return function t(key, vars) {
    let value = strings[key];
    if (value === undefined) {
      if (!warned.has(key)) {
        warned.add(key);
        console.warn(`[atende] missing locale key: ${key}`);
      }
      return key;
    }
    if (typeof value !== 'string') return value;
    if (vars) {
      value = value.replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
    }
    return value;
  };
}

// ---------------------------------------------------------------------------
// Server-Sent Events over fetch (EventSource cannot POST)
// ---------------------------------------------------------------------------

/**
 * Incremental SSE parser. Feed it decoded text with push(); it returns the
 * complete events ({event, data, id}) found so far. Handles \n, \r\n and \r line
 * endings, including a \r\n pair split across two chunks, multi-line data and
 * comment lines (keep-alive pings).
 */
export class SSEParser {
  constructor() {
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.eventType = '';
    this.dataLines = [];
    this.lastId = '';
  }

  push(chunk) {
    this.buffer += chunk;
    const events = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i += 1) {
      const ch = this.buffer[i];
      if (ch !== '\n' && ch !== '\r') continue;
      if (ch === '\r' && i === this.buffer.length - 1) break; // wait: maybe "\r\n" split
      const line = this.buffer.slice(start, i);
      if (ch === '\r' && this.buffer[i + 1] === '\n') i += 1;
      start = i + 1;
      const event = this.handleLine(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** Flush at end of stream; a trailing event without its blank line is still delivered. */
  end() {
    const events = [];
    if (this.buffer !== '') {
      const rest = this.buffer.replace(/\r$/, '');
      this.buffer = '';
      for (const line of rest.split(/\r\n|\r|\n/)) {
        const event = this.handleLine(line);
        if (event) events.push(event);
      }
    }
    const last = this.handleLine('');
    if (last) events.push(last);
    return events;
  }

  handleLine(line) {
    if (line === '') {
      if (this.dataLines.length === 0) {
        this.eventType = '';
        return null;
      }
      const event = { event: this.eventType || 'message', data: this.dataLines.join('\n'), id: this.lastId };
      this.eventType = '';
      this.dataLines = [];
      return event;
    }
    if (line.startsWith(':')) return null; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.eventType = value;
    else if (field === 'data') this.dataLines.push(value);
    else if (field === 'id') this.lastId = value;
    return null;
  }
}

// ---------------------------------------------------------------------------
// Safe rich-text rendering of answers
// ---------------------------------------------------------------------------

const CITE_SRC = '\\[(\\d{1,3}(?:\\s*[,;]\\s*\\d{1,3})*)\\]';
const BOLD_SRC = '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*';
const BULLET_RE = /^\s*[-*•]\s+(.*)$/;
const ORDERED_RE = /^\s*(\d{1,3})[.)]\s+(.*)$/;
const HEADING_RE = /^\s*#{1,6}\s+(.*)$/;

function citationMap(citations) {
  const map = new Map();
  for (const c of citations || []) {
    if (c && Number.isInteger(c.n) && !map.has(c.n)) map.set(c.n, c);
  }
  return map;
}

function citationTitle(c) {
  const title = typeof c.title === 'string' && c.title.trim() ? c.title.trim() : c.doc_id || '';
  const section = typeof c.section === 'string' ? c.section.trim() : '';
  return section && section !== title ? `${title} — ${section}` : String(title);
}

function citationMarker(n, cites, t) {
  const c = cites.get(n);
  const label = `[${n}]`;
  if (!c) return document.createTextNode(label);
  const href = safeUrl(c.url);
  const sup = h('sup', { class: 'cite' });
  if (href) {
    sup.append(
      h('a', {
        href,
        target: '_blank',
        rel: 'noopener noreferrer',
        'aria-label': `${t('sources.cite', { n, title: citationTitle(c) })} ${t('link.newTab')}`,
        text: label,
      }),
    );
  } else {
    sup.append(h('span', { 'aria-label': t('sources.cite', { n, title: citationTitle(c) }), text: label }));
  }
  return sup;
}

/** Append inline content: **bold** and [n] citation markers; everything else is text. */
function appendInline(parent, text, cites, t, allowBold = true) {
  // Bold is not nested: inside **...** only citation markers are recognised.
  const re = allowBold ? new RegExp(`${BOLD_SRC}|${CITE_SRC}`, 'g') : new RegExp(`()${CITE_SRC}`, 'g');
  let last = 0;
  let match;
  while ((match = re.exec(text)) !== null) {
    const [whole, bold, numbers] = match;
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    if (bold !== undefined && bold !== '') {
      const strong = h('strong');
      appendInline(strong, bold, cites, t, false);
      parent.append(strong);
    } else {
      const ns = numbers.split(/\s*[,;]\s*/).map(Number);
      if (ns.some((n) => !cites.has(n))) {
        parent.append(document.createTextNode(whole)); // unknown source: keep literal
      } else {
        ns.forEach((n) => parent.append(citationMarker(n, cites, t)));
      }
    }
    last = match.index + whole.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

/**
 * Turn answer text into a DocumentFragment: paragraphs split on blank lines,
 * single line breaks kept, "- " / "1. " lines as lists, "# " lines as bold
 * lines, **bold**, and [n] markers as superscript links to the citation URL.
 */
export function renderRichText(text, citations, t) {
  const frag = document.createDocumentFragment();
  const cites = citationMap(citations);
  const blocks = String(text || '')
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n+/);

  for (const block of blocks) {
    if (block.trim() === '') continue;
    let current = null; // {kind: 'p'|'ul'|'ol', el, lastItem}
    for (const rawLine of block.split('\n')) {
      const line = rawLine.replace(/\s+$/, '');
      if (line.trim() === '') continue;
      const bullet = BULLET_RE.exec(line);
      const ordered = bullet ? null : ORDERED_RE.exec(line);
      const heading = bullet || ordered ? null : HEADING_RE.exec(line);
      if (bullet || ordered) {
        const kind = bullet ? 'ul' : 'ol';
        if (!current || current.kind !== kind) {
          const el = h(kind);
          if (ordered && ordered[1] !== '1') el.setAttribute('start', ordered[1]);
          frag.append(el);
          current = { kind, el, lastItem: null };
        }
        const li = h('li');
        appendInline(li, bullet ? bullet[1] : ordered[2], cites, t);
        current.el.append(li);
        current.lastItem = li;
      } else if (heading) {
        const p = h('p', { class: 'msg__heading' });
        const strong = h('strong');
        appendInline(strong, heading[1], cites, t, false);
        p.append(strong);
        frag.append(p);
        current = null;
      } else if (current && current.kind !== 'p' && /^\s+/.test(rawLine) && current.lastItem) {
        // Indented continuation of the previous list item.
        current.lastItem.append(h('br'));
        appendInline(current.lastItem, line.trim(), cites, t);
      } else {
        if (!current || current.kind !== 'p') {
          const p = h('p');
          frag.append(p);
          current = { kind: 'p', el: p, lastItem: null };
        } else {
          current.el.append(h('br'));
        }
        appendInline(current.el, line.trim(), cites, t);
      }
    }
  }
  return frag;
}

// ---------------------------------------------------------------------------
// API client
// ---------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail || '';
  }

  static async fromResponse(res) {
    let detail = '';
    try {
      const body = await res.json();
      // FastAPI validation errors carry a list here; only a string is shown.
      if (body && typeof body.detail === 'string') detail = body.detail;
    } catch {
      // Not JSON: fall back to the generic message.
    }
    return new ApiError(res.status, detail);
  }
}

class StreamError extends Error {
  constructor(detail) {
    super(detail || 'stream error');
    this.name = 'StreamError';
    this.detail = detail || '';
  }
}

class InterruptedError extends Error {
  constructor() {
    super('stream ended without a final answer');
    this.name = 'InterruptedError';
  }
}

class TimeoutError extends Error {
  constructor() {
    super('request timed out');
    this.name = 'TimeoutError';
  }
}

/** Keep only the fields the UI uses, with safe types. */
export function normalizeReply(data) {
  const reply = data && typeof data === 'object' ? data : {};
  const answer = typeof reply.answer === 'string' ? reply.answer : typeof reply.text === 'string' ? reply.text : '';
  const decision = DECISIONS.has(reply.decision) ? reply.decision : 'answered';
  const citations = Array.isArray(reply.citations)
    ? reply.citations
        .filter((c) => c && typeof c === 'object')
        .map((c) => ({ ...c, n: Number(c.n) }))
        .filter((c) => Number.isInteger(c.n))
    : [];
  return { answer, decision, citations, messageId: reply.message_id ?? null };
}

/**
 * A request with an inactivity timeout. `touch()` restarts the timer;
 * `abort()` cancels without reporting a timeout.
 */
class TimedRequest {
  constructor(idleMs, outerSignal) {
    this.controller = new AbortController();
    this.idleMs = idleMs;
    this.timedOut = false;
    this.timer = null;
    if (outerSignal) {
      if (outerSignal.aborted) this.controller.abort();
      else outerSignal.addEventListener('abort', () => this.controller.abort(), { once: true });
    }
    this.touch();
  }

  get signal() {
    return this.controller.signal;
  }

  touch() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.idleMs);
  }

  finish() {
    clearTimeout(this.timer);
  }

  /** Map an abort caused by our own timer to TimeoutError. */
  translate(err) {
    if (this.timedOut && err && err.name === 'AbortError') return new TimeoutError();
    return err;
  }
}

export class AtendeApi {
  constructor({ baseUrl = '', idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    this.idleTimeoutMs = idleTimeoutMs;
  }

  url(path) {
    return `${this.baseUrl}${path}`;
  }

  async json(method, path, body, signal) {
    const req = new TimedRequest(this.idleTimeoutMs, signal);
    try {
      // A body always goes as JSON with its Content-Type: the server reads no other, which a form on another site
      // could send.
      const res = await fetch(this.url(path), {
        method,
        headers: body === undefined
          ? { Accept: 'application/json' }
          : { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        signal: req.signal,
      });
      if (!res.ok) throw await ApiError.fromResponse(res);
      return await res.json();
    } catch (err) {
      throw req.translate(err);
    } finally {
      req.finish();
    }
  }

  async createConversation(signal) {
    const data = await this.json('POST', '/api/conversations', { channel: 'web' }, signal);
    if (!data || (typeof data.id !== 'string' && typeof data.id !== 'number')) {
      throw new ApiError(500, '');
    }
    return String(data.id);
  }

  getConversation(id, signal) {
    return this.json('GET', `/api/conversations/${encodeURIComponent(id)}`, undefined, signal);
  }

  sendSurvey(id, score, comment, signal) {
    return this.json('POST', `/api/conversations/${encodeURIComponent(id)}/survey`, { score, comment }, signal);
  }

  async sendMessage(id, text, messageId, signal) {
    const body = { text, client_message_id: messageId };
    const data = await this.json('POST', `/api/conversations/${encodeURIComponent(id)}/messages`, body, signal);
    return normalizeReply(data);
  }

  /**
   * Stream a reply. `onToken(text)` is called for each token event; resolves
   * with the normalised final reply from the `done` event.
   */
  async streamMessage(id, text, { messageId, signal, onToken } = {}) {
    const req = new TimedRequest(this.idleTimeoutMs, signal);
    let reader = null;
    try {
      const res = await fetch(this.url(`/api/conversations/${encodeURIComponent(id)}/messages/stream`), {
        method: 'POST',
        headers: { Accept: 'text/event-stream', 'Content-Type': 'application/json' },
        body: JSON.stringify({ text, client_message_id: messageId }),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: req.signal,
      });
      if (!res.ok) throw await ApiError.fromResponse(res);
      const type = (res.headers.get('content-type') || '').toLowerCase();
      if (!type.includes('text/event-stream')) {
        // The server answered with plain JSON; accept it.
        return normalizeReply(await res.json());
      }

      const parser = new SSEParser();
      const decoder = new TextDecoder('utf-8');
      let final = null;
      const handle = (events) => {
        for (const ev of events) {
          if (final) return;
          let payload = null;
          try {
            payload = ev.data ? JSON.parse(ev.data) : null;
          } catch {
            payload = null;
          }
          if (ev.event === 'token') {
            if (payload && typeof payload.text === 'string' && onToken) onToken(payload.text);
          } else if (ev.event === 'done') {
            final = normalizeReply(payload);
          } else if (ev.event === 'error') {
            throw new StreamError(payload && typeof payload.detail === 'string' ? payload.detail : '');
          }
        }
      };

      if (!res.body || typeof res.body.getReader !== 'function') {
        handle(parser.push(await res.text()));
        handle(parser.end());
      } else {
        reader = res.body.getReader();
        while (!final) {
          const { value, done } = await reader.read();
          req.touch();
          if (done) {
            handle(parser.push(decoder.decode()));
            handle(parser.end());
            break;
          }
          handle(parser.push(decoder.decode(value, { stream: true })));
        }
      }
      if (!final) throw new InterruptedError();
      return final;
    } catch (err) {
      throw req.translate(err);
    } finally {
      req.finish();
      if (reader) reader.cancel().catch(() => {});
    }
  }
}

// ---------------------------------------------------------------------------
// The chat UI
// ---------------------------------------------------------------------------

export class AtendeChat {
  /**
   * @param {HTMLElement} root    element to render into (its content is replaced)
   * @param {object} locale       result of loadLocale()
   * @param {object} [options]
   * @param {string} [options.apiBase]      API origin/prefix; '' = same origin
   * @param {number} [options.maxChars]     message length limit (default 2000)
   * @param {boolean} [options.stream]      use the SSE endpoint (default true)
   * @param {boolean} [options.embed]       running inside the widget iframe
   * @param {string} [options.storageKey]   sessionStorage key for the conversation id
   * @param {number} [options.idleTimeoutMs]
   */
  constructor(root, locale, options = {}) {
    this.root = root;
    this.lang = locale.lang;
    this.t = createTranslator(locale.strings);
    this.maxChars = Number(options.maxChars) > 0 ? Number(options.maxChars) : DEFAULT_MAX_CHARS;
    this.streaming = options.stream !== false;
    this.embed = Boolean(options.embed);
    this.storageKey = options.storageKey || STORAGE_KEY;
    this.api = new AtendeApi({ baseUrl: options.apiBase || '', idleTimeoutMs: options.idleTimeoutMs });
    this.conversationId = readStorage(this.storageKey);
    this.busy = false;
    this.inflight = null;
    this.timeFormat = new Intl.DateTimeFormat(this.lang, { hour: '2-digit', minute: '2-digit' });
    this.dateTimeFormat = new Intl.DateTimeFormat(this.lang, {
      day: '2-digit',
      month: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    this.fullDateFormat = new Intl.DateTimeFormat(this.lang, { dateStyle: 'full', timeStyle: 'short' });
    this.counterTimer = null;
    this.build();
  }

  // --- construction -------------------------------------------------------

  build() {
    const t = this.t;
    const titleId = uid('title');
    const inputId = uid('input');
    const hintId = uid('hint');
    const counterId = uid('counter');

    this.newButton = h('button', {
      type: 'button',
      class: 'chat-header__new',
      text: t('header.newConversation'),
      onClick: () => this.newConversation(),
    });

    const privacyHref = safeUrl(t('header.privacyUrl'));
    const header = h(
      'header',
      { class: 'chat-header' },
      h(
        'div',
        { class: 'chat-header__top' },
        h('h1', { class: 'chat-header__title', id: titleId, text: t('header.title') }),
        this.newButton,
      ),
      h(
        'p',
        { class: 'chat-header__note' },
        t('header.note'),
        ' ',
        privacyHref
          ? h(
              'a',
              { href: privacyHref, target: '_blank', rel: 'noopener', class: 'chat-header__privacy' },
              t('header.privacy'),
              h('span', { class: 'sr-only', text: ` ${t('link.newTab')}` }),
            )
          : null,
      ),
    );

    this.log = h('div', {
      class: 'chat-log',
      role: 'log',
      'aria-live': 'polite',
      'aria-relevant': 'additions',
      'aria-label': t('log.label'),
      tabindex: '0',
    });

    // Announced status: typing indicator (visible) and a screen-reader-only line.
    this.typingText = h('span', { class: 'typing__text' });
    this.typing = h(
      'div',
      { class: 'typing', role: 'status' },
      h('span', { class: 'typing__dots', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
      this.typingText,
    );
    this.srStatus = h('div', { class: 'sr-only', role: 'status' });

    this.input = h('textarea', {
      id: inputId,
      class: 'composer__input',
      name: 'text',
      rows: '1',
      maxlength: String(this.maxChars),
      placeholder: t('form.placeholder'),
      autocomplete: 'off',
      spellcheck: 'true',
      enterkeyhint: 'send',
      'aria-describedby': `${hintId} ${counterId}`,
    });
    this.counter = h('p', { id: counterId, class: 'composer__counter', 'aria-hidden': 'true', hidden: true });
    this.sendButton = h(
      'button',
      { type: 'submit', class: 'composer__send' },
      sendIcon(),
      h('span', { class: 'composer__send-text', text: t('form.send') }),
    );
    this.form = h(
      'form',
      { class: 'composer', novalidate: true },
      h('label', { class: 'composer__label', for: inputId, text: t('form.label') }),
      h('div', { class: 'composer__row' }, this.input, this.sendButton),
      h(
        'div',
        { class: 'composer__meta' },
        h('p', { id: hintId, class: 'composer__hint', text: t('form.hint') }),
        this.counter,
      ),
    );

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const viaButton = event.submitter === this.sendButton;
      this.submitInput(viaButton);
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.submitInput(false);
      }
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      this.updateCounter();
    });

    const app = h(
      'div',
      { class: `atende-chat${this.embed ? ' atende-chat--embed' : ''}`, lang: this.lang },
      header,
      this.log,
      this.typing,
      this.srStatus,
      this.form,
    );
    this.renderWelcome();
    this.root.replaceChildren(app);
    this.app = app;
  }

  renderWelcome() {
    const t = this.t;
    const suggestions = Array.isArray(t('welcome.suggestions')) ? t('welcome.suggestions') : [];
    this.chips = suggestions.map((text) =>
      h('button', {
        type: 'button',
        class: 'chip',
        text: String(text),
        onClick: (event) => this.sendFromControl(String(text), event.currentTarget),
      }),
    );
    const chipsLabelId = uid('chips');
    const welcome = h(
      'div',
      { class: 'msg msg--assistant msg--welcome' },
      h('p', { class: 'msg__meta' }, h('span', { class: 'msg__author', text: t('msg.assistant') })),
      h('div', { class: 'msg__body' }, renderRichText(t('welcome.text'), [], t)),
      this.chips.length
        ? h(
            'div',
            { class: 'chips' },
            h('p', { id: chipsLabelId, class: 'sr-only', text: t('welcome.suggestionsLabel') }),
            h('ul', { class: 'chips__list', 'aria-labelledby': chipsLabelId }, this.chips.map((chip) => h('li', {}, chip))),
          )
        : null,
    );
    this.log.append(welcome);
  }

  // --- lifecycle ------------------------------------------------------------

  /** Restore the stored conversation, if any. */
  async start() {
    if (!this.conversationId) return;
    const id = this.conversationId;
    this.setBusy(true, { quiet: true });
    try {
      const data = await this.api.getConversation(id);
      if (this.conversationId !== id) return; // reset meanwhile
      const messages = data && Array.isArray(data.messages) ? data.messages : [];
      messages.forEach((m, index) => {
        if (!m || typeof m.text !== 'string') return;
        const when = parseTimestamp(m.created_at);
        if (m.role === 'user') {
          this.appendUser(m.text, when);
        } else if (m.role === 'assistant') {
          this.appendAssistant(normalizeReply({ ...m, answer: m.text }), when, {
            actions: index === messages.length - 1,
          });
        } else if (m.role === 'agent' || m.role === 'system') {
          this.appendAgent(m.text, when, m.role);
        }
      });
      this.agentShown = messages.filter((m) => m && (m.role === 'agent' || m.role === 'system')).length;
      if (data && (data.state === 'waiting' || data.state === 'with_agent')) this.watchAgent();
      this.scrollToEnd(false);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.forgetConversation(); // server was reset: start over silently
      } else if (!(err && err.name === 'AbortError')) {
        this.appendError(this.t('error.restore'), null);
      }
    } finally {
      this.setBusy(false, { quiet: true });
    }
  }

  /** While a person serves the conversation, poll for their messages and show them. */
  watchAgent() {
    if (this.agentTimer) return;
    const id = this.conversationId;
    if (!this.agentShown) this.agentShown = 0;
    this.agentTimer = setInterval(async () => {
      if (this.conversationId !== id) return this.stopWatchingAgent();
      let data;
      try {
        data = await this.api.getConversation(id);
      } catch (err) {
        return; // a missed poll is retried on the next tick
      }
      const fromStaff = (data.messages || []).filter((m) => m && (m.role === 'agent' || m.role === 'system'));
      for (const m of fromStaff.slice(this.agentShown)) this.appendAgent(m.text, parseTimestamp(m.created_at), m.role);
      this.agentShown = fromStaff.length;
      if (data.state === 'closed' || data.state === 'bot') this.stopWatchingAgent();
      if (data.state === 'closed') this.appendSurvey(id);
    }, 3000);
  }

  /** After a person closed the service: rate it 1–5 with an optional comment, sent once. */
  appendSurvey(id) {
    const t = this.t;
    const comment = h('textarea', { class: 'survey__comment', rows: '2', maxlength: '2000' });
    comment.setAttribute('aria-label', t('survey.comment'));
    const status = h('p', { class: 'survey__status', role: 'status' });
    const scores = [1, 2, 3, 4, 5].map((score) => {
      const button = h('button', { type: 'button', class: 'survey__score', text: String(score) });
      button.setAttribute('aria-label', t('survey.score', { score }));
      button.addEventListener('click', async () => {
        for (const b of scores) b.disabled = true;
        try {
          await this.api.sendSurvey(id, score, comment.value.trim() || null);
          button.setAttribute('aria-pressed', 'true');
          status.textContent = t('survey.thanks');
          comment.disabled = true;
        } catch (err) {
          for (const b of scores) b.disabled = false;
          status.textContent = t('survey.failed');
        }
      });
      return button;
    });
    const node = h(
      'div',
      { class: 'msg msg--assistant msg--survey' },
      h('p', { class: 'msg__body msg__body--plain', text: t('survey.prompt') }),
      h('div', { class: 'survey__scores' }, ...scores),
      comment,
      status,
    );
    this.log.append(node);
    this.scrollToEnd();
    return node;
  }

  stopWatchingAgent() {
    clearInterval(this.agentTimer);
    this.agentTimer = null;
  }

  forgetConversation() {
    this.stopWatchingAgent();
    this.agentShown = 0;
    this.conversationId = null;
    writeStorage(this.storageKey, null);
  }

  async ensureConversation(signal) {
    if (this.conversationId) return this.conversationId;
    const id = await this.api.createConversation(signal);
    this.conversationId = id;
    writeStorage(this.storageKey, id);
    return id;
  }

  /** Drop the current conversation and show the welcome message again. */
  newConversation() {
    if (this.inflight) this.inflight.abort();
    this.inflight = null;
    this.forgetConversation();
    this.log.replaceChildren();
    this.renderWelcome();
    this.setBusy(false);
    this.input.value = '';
    this.autosize();
    this.updateCounter();
    this.announce(this.t('header.newConversationDone'));
    this.input.focus();
  }

  focusInput() {
    this.input.focus();
  }

  // --- sending --------------------------------------------------------------

  submitInput(viaButton) {
    const text = this.input.value;
    if (text.trim() === '' || this.busy) {
      if (viaButton) this.input.focus();
      return;
    }
    if (this.sendText(text)) {
      this.input.value = '';
      this.autosize();
      this.updateCounter();
    }
    // The send button becomes disabled; keep keyboard users in the textarea.
    if (viaButton && !isCoarsePointer()) this.input.focus();
  }

  sendFromControl(text, control) {
    const hadFocus = document.activeElement === control;
    this.sendText(text);
    if (hadFocus && !isCoarsePointer()) this.input.focus();
  }

  /**
   * Send a message. Returns false when it was not sent (empty, too long, busy).
   * The request itself runs asynchronously.
   */
  sendText(raw, { retry = false, messageId = null } = {}) {
    const text = String(raw || '').trim();
    if (text === '' || this.busy) return false;
    if (text.length > this.maxChars) {
      this.appendError(this.t('error.tooLong', { max: this.maxChars }), null);
      return false;
    }
    this.clearTransient();
    if (!retry) this.appendUser(text, new Date());
    this.run(text, messageId || newMessageId());
    return true;
  }

  async run(text, messageId) {
    const controller = new AbortController();
    this.inflight = controller;
    this.setBusy(true);
    let bubble = null;
    try {
      const reply = await this.deliver(text, messageId, controller.signal, () => {
        if (!bubble) bubble = this.startStreamingBubble();
        return bubble;
      });
      if (controller.signal.aborted) return;
      if (bubble) bubble.remove();
      bubble = null;
      this.appendAssistant(reply, new Date(), { actions: true });
      if (reply.decision === 'handoff') this.watchAgent();
    } catch (err) {
      if (bubble) bubble.remove();
      bubble = null;
      if (controller.signal.aborted) return; // "Nova conversa" cancelled it
      this.reportError(err, { text, messageId });
    } finally {
      if (this.inflight === controller) {
        this.inflight = null;
        this.setBusy(false);
      }
    }
  }

  /**
   * Send through the streaming endpoint (or the plain one), recovering from a
   * lost conversation (404: create a new one and resend once) and from a
   * server without the streaming route (fall back to the plain endpoint).
   */
  async deliver(text, messageId, signal, getBubble) {
    let recreated = false;
    for (;;) {
      const id = await this.ensureConversation(signal);
      try {
        if (!this.streaming) return await this.api.sendMessage(id, text, messageId, signal);
        return await this.api.streamMessage(id, text, {
          messageId,
          signal,
          onToken: (token) => getBubble().append(token),
        });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (this.streaming && (err.status === 405 || err.status === 501)) {
          this.streaming = false; // no streaming route: use the plain endpoint
          continue;
        }
        if (err.status !== 404) throw err;
        if (this.streaming && (await this.conversationExists(id, signal))) {
          this.streaming = false; // the conversation is fine, so the stream route is missing
          continue;
        }
        if (recreated) throw err;
        recreated = true;
        this.forgetConversation(); // server lost it (e.g. reset): start a new one silently
      }
    }
  }

  /** Whether the server still knows the conversation (used to tell a lost conversation from a missing route). */
  async conversationExists(id, signal) {
    try {
      await this.api.getConversation(id, signal);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return false;
      throw err;
    }
  }

  /** `sent`: { text, messageId } of the failed message; a retry sends it again under the same id. */
  reportError(err, sent) {
    const t = this.t;
    let message = t('error.generic');
    let retryable = true;
    if (err instanceof ApiError) {
      message = err.detail || t('error.generic');
      // 409: the same message is still being answered; a retry gets that answer.
      retryable = err.status >= 500 || err.status === 408 || err.status === 409 || err.status === 429;
    } else if (err instanceof StreamError) {
      message = err.detail || t('error.generic');
    } else if (err instanceof TimeoutError) {
      message = t('error.timeout');
    } else if (err instanceof InterruptedError) {
      message = t('error.interrupted');
    } else if (err instanceof TypeError) {
      message = t('error.network'); // fetch rejects with TypeError on network failure
    } else {
      console.error('[atende]', err);
    }
    this.appendError(message, retryable ? sent : null);
  }

  // --- rendering messages -----------------------------------------------------

  meta(author, when) {
    const meta = h('p', { class: 'msg__meta' }, h('span', { class: 'msg__author', text: author }));
    if (when) {
      const sameDay = new Date().toDateString() === when.toDateString();
      const shown = (sameDay ? this.timeFormat : this.dateTimeFormat).format(when);
      meta.append(
        h('span', { class: 'msg__sep', 'aria-hidden': 'true', text: ' · ' }),
        h('time', { datetime: when.toISOString(), title: this.fullDateFormat.format(when) }, h('span', { class: 'sr-only', text: ', ' }), shown),
      );
    }
    return meta;
  }

  appendUser(text, when) {
    const node = h(
      'div',
      { class: 'msg msg--user' },
      this.meta(this.t('msg.you'), when),
      h('p', { class: 'msg__body msg__body--plain', text }),
    );
    this.log.append(node);
    this.scrollToEnd();
    return node;
  }

  appendAgent(text, when, role) {
    const node = h(
      'div',
      { class: `msg msg--assistant msg--${role}` },
      this.meta(this.t(role === 'agent' ? 'msg.agent' : 'msg.system'), when),
      h('p', { class: 'msg__body msg__body--plain', text }),
    );
    this.log.append(node);
    this.scrollToEnd();
    return node;
  }

  appendAssistant(reply, when, { actions = false } = {}) {
    const t = this.t;
    const node = h('div', {
      class: `msg msg--assistant msg--${reply.decision}`,
      dataset: reply.messageId !== null && reply.messageId !== undefined
        ? { decision: reply.decision, messageId: String(reply.messageId) }
        : { decision: reply.decision },
    });
    node.append(this.meta(t('msg.assistant'), when));
    node.append(h('div', { class: 'msg__body' }, renderRichText(reply.answer, reply.citations, t)));

    const sources = this.renderSources(reply.citations);
    if (sources) node.append(sources);

    if (actions && HANDOFF_DECISIONS.has(reply.decision)) {
      const button = h('button', {
        type: 'button',
        class: 'msg__handoff',
        text: t('handoff.button'),
        onClick: (event) => this.sendFromControl(t('handoff.message'), event.currentTarget),
      });
      button.disabled = this.busy;
      node.append(h('div', { class: 'msg__actions' }, button));
    }
    this.log.append(node);
    this.reveal(node);
    return node;
  }

  renderSources(citations) {
    const t = this.t;
    const seen = new Set();
    const items = [];
    for (const c of citations || []) {
      if (seen.has(c.n)) continue;
      seen.add(c.n);
      const label = citationTitle(c);
      if (!label) continue;
      const href = safeUrl(c.url);
      const content = href
        ? h(
            'a',
            { href, target: '_blank', rel: 'noopener noreferrer' },
            label,
            h('span', { class: 'sr-only', text: ` ${t('link.newTab')}` }),
          )
        : h('span', { text: label });
      items.push(h('li', { value: String(c.n) }, content));
    }
    if (items.length === 0) return null;
    const labelId = uid('sources');
    return h(
      'div',
      { class: 'msg__sources' },
      h('p', { class: 'msg__sources-title', id: labelId, text: t('sources.title') }),
      h('ol', { 'aria-labelledby': labelId }, items),
    );
  }

  /** A temporary bubble for streamed tokens; hidden from screen readers (the final answer is announced). */
  startStreamingBubble() {
    const body = h('div', { class: 'msg__body' });
    const node = h(
      'div',
      { class: 'msg msg--assistant msg--streaming', 'aria-hidden': 'true' },
      this.meta(this.t('msg.assistant'), null),
      body,
    );
    this.log.append(node);
    let text = '';
    let scheduled = false;
    const render = () => {
      scheduled = false;
      const stick = this.isNearBottom();
      body.replaceChildren(renderRichText(text, [], this.t));
      if (stick) this.scrollToEnd(false);
    };
    return {
      append: (token) => {
        text += token;
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(render);
        }
      },
      remove: () => node.remove(),
    };
  }

  appendError(message, retry) {
    const t = this.t;
    const node = h(
      'div',
      { class: 'msg msg--error-line' },
      h('p', {}, h('span', { class: 'sr-only', text: `${t('error.prefix')} ` }), message),
    );
    if (retry) {
      node.append(
        h('button', {
          type: 'button',
          class: 'msg__retry',
          text: t('error.retry'),
          onClick: (event) => {
            const hadFocus = document.activeElement === event.currentTarget;
            if (this.busy) return;
            node.remove();
            this.sendText(retry.text, { retry: true, messageId: retry.messageId });
            if (hadFocus && !isCoarsePointer()) this.input.focus();
          },
        }),
      );
    }
    this.log.append(node);
    this.scrollToEnd();
  }

  /** Remove stale error lines and handoff buttons before a new exchange. */
  clearTransient() {
    this.log.querySelectorAll('.msg--error-line, .msg__actions').forEach((el) => el.remove());
  }

  // --- state helpers ------------------------------------------------------------

  setBusy(busy, { quiet = false } = {}) {
    this.busy = busy;
    this.sendButton.disabled = busy;
    this.app.classList.toggle('is-busy', busy);
    this.log.setAttribute('aria-busy', busy && quiet ? 'true' : 'false');
    this.log
      .querySelectorAll('.chip, .msg__handoff, .msg__retry')
      .forEach((button) => { button.disabled = busy; });
    if (busy && !quiet) {
      this.typingText.textContent = this.t('typing');
      this.typing.classList.add('is-active');
      this.scrollToEnd(false); // the indicator shrinks the log: keep the question in view
    } else {
      this.typingText.textContent = '';
      this.typing.classList.remove('is-active');
    }
  }

  announce(text) {
    this.srStatus.textContent = '';
    // A fresh text node after a tick makes screen readers repeat identical messages.
    setTimeout(() => { this.srStatus.textContent = text; }, 50);
  }

  autosize() {
    const el = this.input;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight + 2, TEXTAREA_MAX_HEIGHT_PX)}px`;
    el.style.overflowY = el.scrollHeight + 2 > TEXTAREA_MAX_HEIGHT_PX ? 'auto' : 'hidden';
  }

  updateCounter() {
    const length = this.input.value.length;
    const remaining = Math.max(0, this.maxChars - length);
    const show = length >= Math.floor(this.maxChars * COUNTER_THRESHOLD);
    let text = '';
    if (remaining === 0) text = this.t('form.counterLimit', { max: this.maxChars });
    else if (remaining === 1) text = this.t('form.counterOne');
    else text = this.t('form.counter', { remaining: remaining.toLocaleString(this.lang), max: this.maxChars });
    this.counter.hidden = !show;
    this.counter.textContent = show ? text : '';
    this.counter.classList.toggle('is-limit', remaining === 0);
    // Screen readers hear the count only after typing pauses.
    clearTimeout(this.counterTimer);
    if (show) this.counterTimer = setTimeout(() => this.announce(text), 800);
  }

  isNearBottom() {
    const log = this.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  scrollToEnd(smooth = true) {
    const behavior = smooth && !prefersReducedMotion() ? 'smooth' : 'auto';
    this.log.scrollTo({ top: this.log.scrollHeight, behavior });
  }

  /** Scroll a new answer into view: all of it when it fits, otherwise its beginning. */
  reveal(node, smooth = true) {
    const log = this.log; // positioned, so node.offsetTop is relative to it
    const margin = 8;
    const bottomAligned = node.offsetTop + node.offsetHeight - log.clientHeight + margin;
    const top = Math.max(0, Math.min(node.offsetTop - margin, bottomAligned));
    const behavior = smooth && !prefersReducedMotion() ? 'smooth' : 'auto';
    log.scrollTo({ top, behavior });
  }
}

function sendIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '20');
  svg.setAttribute('height', '20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'composer__send-icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M3.4 20.4 21 12 3.4 3.6 3.4 10.1 15 12 3.4 13.9z');
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

// ---------------------------------------------------------------------------
// Mounting
// ---------------------------------------------------------------------------

function readOptions(root) {
  const params = new URLSearchParams(window.location.search);
  const data = root.dataset || {};
  return {
    lang: params.get('lang') || data.lang || document.documentElement.getAttribute('lang') || DEFAULT_LANG,
    embed: params.get('embed') === '1' || data.embed === 'true',
    apiBase: data.apiBase || '',
    maxChars: data.maxChars ? Number(data.maxChars) : DEFAULT_MAX_CHARS,
    stream: data.stream !== 'false',
    localeBase: data.localeBase || undefined,
    setDocumentLang: data.setDocumentLang !== 'false',
  };
}

/** Wire the embed-mode messages with the widget that hosts this page in an iframe. */
function connectToWidget(chat) {
  if (window.parent === window) return;
  window.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !event.isComposing && !event.defaultPrevented) {
      // No secrets in this message, so any parent origin may receive it.
      window.parent.postMessage({ type: 'atende:close' }, '*');
    }
  });
  window.addEventListener('message', (event) => {
    if (event.source !== window.parent) return;
    const data = event.data;
    if (data && data.type === 'atende:focus') chat.focusInput();
  });
  window.parent.postMessage({ type: 'atende:ready' }, '*');
}

/**
 * Mount the chat into `root`. Options override the data-* attributes of the
 * root and the page URL (?lang=, ?embed=1). Resolves to the AtendeChat.
 */
export async function mountChat(root, options = {}) {
  if (!root) throw new Error('mountChat: root element is required');
  if (root.dataset.atendeMounted) return root.atendeChat;
  root.dataset.atendeMounted = 'true';
  const opts = { ...readOptions(root), ...options };
  let locale;
  try {
    locale = await loadLocale(opts.lang, opts.localeBase);
  } catch (err) {
    console.error('[atende] could not load the locale files', err);
    const failure = document.getElementById('atende-boot-error');
    if (failure) failure.hidden = false;
    throw err;
  }
  if (opts.setDocumentLang !== false) {
    document.documentElement.lang = locale.lang;
    document.documentElement.dir = locale.dir;
    document.title = createTranslator(locale.strings)('page.title');
  }
  if (opts.embed) document.documentElement.classList.add('is-embed');
  const chat = new AtendeChat(root, locale, opts);
  root.atendeChat = chat;
  if (opts.embed) connectToWidget(chat);
  await chat.start();
  return chat;
}

function autoMount() {
  document.querySelectorAll('[data-atende-chat]').forEach((root) => {
    mountChat(root).catch(() => {});
  });
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', autoMount, { once: true });
  else autoMount();
}
