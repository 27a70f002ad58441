// Atende embeddable widget.
//
// Add to any page of the portal:
//   <script src="https://HOST/widget.js" data-atende-url="https://HOST" defer></script>
//
// It injects a floating "Atendimento" button (bottom-right) that opens the chat
// in a panel. The chat itself runs in an <iframe src="HOST/?embed=1"> so the
// portal's CSS cannot break it and ours cannot leak into the portal; the button
// and panel live in a shadow root for the same reason.
//
// Optional attributes on the <script> tag:
//   data-atende-url  base URL of the Atende server (default: where this file came from)
//   data-lang        UI language (default: the portal's <html lang>, then pt-BR)
//
// Public API for the portal: window.AtendeWidget.open() / .close() / .toggle().
//
// This is a classic script (not a module) so document.currentScript works.
(function () {
  'use strict';

  // Guard against the script being included twice.
  const LOADED = Symbol.for('atende.widget.loaded');
  if (window[LOADED]) return;
  window[LOADED] = true;

  const DEFAULT_LANG = 'pt-BR';
  const LOCALE_TIMEOUT_MS = 4000;
  // Last resort when the locale file cannot be fetched (e.g. CORS not enabled
  // on the server). The real strings live in /static/locales/{lang}.json.
  const FALLBACK_STRINGS = {
    'widget.button': 'Atendimento',
    'widget.buttonLabel': 'Abrir atendimento da Prefeitura',
    'widget.close': 'Fechar atendimento',
    'widget.title': 'Atendimento',
    'widget.frameTitle': 'Chat de atendimento da Prefeitura',
  };

  const script = document.currentScript;

  function normalizeLang(tag) {
    if (typeof tag !== 'string') return '';
    const trimmed = tag.trim().replace(/_/g, '-');
    if (!/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$/.test(trimmed)) return '';
    return trimmed
      .split('-')
      .map((part, i) => (i === 0 ? part.toLowerCase() : part.length === 2 ? part.toUpperCase() : part))
      .join('-');
  }

  /** Base URL of the Atende server, without a trailing slash. */
  function resolveBase() {
    const attr = script && script.getAttribute('data-atende-url');
    if (attr) {
      try {
        return new URL(attr, document.baseURI).href.replace(/\/+$/, '');
      } catch (err) {
        console.error('[atende] invalid data-atende-url', err);
      }
    }
    if (script && script.src) {
      const url = new URL(script.src, document.baseURI);
      // Served as /widget.js or /static/widget.js, possibly under a path prefix.
      const prefix = url.pathname.replace(/\/(static\/)?widget\.js$/, '');
      return `${url.origin}${prefix}`.replace(/\/+$/, '');
    }
    return null;
  }

  const base = resolveBase();
  if (!base) {
    console.error('[atende] cannot tell the server address: set data-atende-url on the <script> tag');
    return;
  }
  const baseOrigin = new URL(base).origin;
  const lang =
    normalizeLang(script && script.getAttribute('data-lang')) ||
    normalizeLang(document.documentElement.getAttribute('lang')) ||
    DEFAULT_LANG;

  async function fetchStrings(code) {
    const res = await fetch(`${base}/static/locales/${encodeURIComponent(code)}.json`, {
      credentials: 'omit',
      headers: { Accept: 'application/json' },
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return res.json();
  }

  async function loadStrings() {
    const attempts = lang === DEFAULT_LANG ? [DEFAULT_LANG] : [lang, DEFAULT_LANG];
    for (const code of attempts) {
      try {
        return { ...FALLBACK_STRINGS, ...(await fetchStrings(code)) };
      } catch (err) {
        // try the next one
      }
    }
    return FALLBACK_STRINGS;
  }

  function withTimeout(promise, ms, fallback) {
    return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(fallback), ms))]);
  }

  const CSS = `
    :host { all: initial; }
    *, *::before, *::after { box-sizing: border-box; }
    [hidden] { display: none !important; }
    .launcher, .panel {
      font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
      font-size: 16px;
      line-height: 1.4;
    }
    .launcher {
      position: fixed;
      right: 16px;
      bottom: 16px;
      display: inline-flex;
      align-items: center;
      gap: 8px;
      min-height: 48px;
      padding: 10px 18px 10px 14px;
      border: 2px solid #ffffff;
      border-radius: 999px;
      background: #1351b4;
      color: #ffffff;
      font-size: 16px;
      font-weight: 700;
      letter-spacing: normal;
      text-transform: none;
      cursor: pointer;
      box-shadow: 0 2px 6px rgba(0, 0, 0, 0.35);
    }
    .launcher:hover { background: #0c326f; }
    .launcher svg, .close svg { flex: none; }
    button:focus { outline: none; }
    button:focus-visible {
      outline: 3px solid #0c326f;
      outline-offset: 2px;
      box-shadow: 0 0 0 2px #ffffff;
    }
    .panel {
      position: fixed;
      right: 16px;
      bottom: 80px;
      width: min(400px, calc(100vw - 32px));
      height: min(640px, calc(100vh - 104px));
      display: flex;
      flex-direction: column;
      overflow: hidden;
      border: 1px solid #8a96a8;
      border-radius: 12px;
      background: #ffffff;
      color: #1b1b1b;
      box-shadow: 0 8px 28px rgba(0, 0, 0, 0.3);
    }
    .panel__bar {
      flex: none;
      display: flex;
      align-items: center;
      justify-content: space-between;
      gap: 8px;
      padding: 6px 6px 6px 14px;
      background: #0c326f;
      color: #ffffff;
    }
    .panel__title {
      margin: 0;
      font-size: 17px;
      font-weight: 700;
      line-height: 1.3;
      color: #ffffff;
    }
    .close {
      display: inline-flex;
      align-items: center;
      justify-content: center;
      width: 44px;
      height: 44px;
      padding: 0;
      border: 0;
      border-radius: 8px;
      background: transparent;
      color: #ffffff;
      cursor: pointer;
    }
    .close:hover { background: rgba(255, 255, 255, 0.15); }
    .close:focus-visible { outline-color: #ffcd07; outline-offset: -3px; box-shadow: none; }
    .frame {
      flex: 1 1 auto;
      width: 100%;
      min-height: 0;
      border: 0;
      display: block;
      background: #ffffff;
    }
    @media (prefers-reduced-motion: no-preference) {
      .panel { animation: atende-in 160ms ease-out; }
      @keyframes atende-in {
        from { opacity: 0; transform: translateY(12px); }
        to { opacity: 1; transform: none; }
      }
    }
    @media (max-width: 480px), (max-height: 520px) {
      .panel {
        inset: 0;
        width: 100%;
        height: 100%;
        border: 0;
        border-radius: 0;
      }
      /* The full-screen panel has its own close button; the launcher would cover the composer. */
      .panel:not([hidden]) ~ .launcher { display: none; }
    }
    @media (forced-colors: active) {
      .launcher, .panel { border: 2px solid CanvasText; }
    }
  `;

  function svg(pathData) {
    const ns = 'http://www.w3.org/2000/svg';
    const el = document.createElementNS(ns, 'svg');
    el.setAttribute('viewBox', '0 0 24 24');
    el.setAttribute('width', '24');
    el.setAttribute('height', '24');
    el.setAttribute('aria-hidden', 'true');
    el.setAttribute('focusable', 'false');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', pathData);
    path.setAttribute('fill', 'currentColor');
    el.append(path);
    return el;
  }

  const ICON_CHAT =
    'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z';
  const ICON_CLOSE =
    'M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 1 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z';

  function build(strings) {
    const t = (key) => (typeof strings[key] === 'string' ? strings[key] : FALLBACK_STRINGS[key]);

    const host = document.createElement('atende-widget');
    // Inline !important beats the portal's stylesheets; CSSOM writes are CSP-safe.
    host.style.cssText =
      'all: initial !important; display: block !important; position: fixed !important; ' +
      'right: 0 !important; bottom: 0 !important; width: 0 !important; height: 0 !important; ' +
      'z-index: 2147483000 !important;';
    const root = host.attachShadow({ mode: 'open' });

    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      const style = document.createElement('style');
      style.textContent = CSS;
      root.append(style);
    }

    const launcher = document.createElement('button');
    launcher.type = 'button';
    launcher.className = 'launcher';
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-controls', 'atende-panel');
    launcher.setAttribute('aria-haspopup', 'dialog');
    const launcherText = document.createElement('span');
    launcherText.textContent = t('widget.button');
    launcher.append(svg(ICON_CHAT), launcherText);
    if (t('widget.buttonLabel') !== t('widget.button')) launcher.title = t('widget.buttonLabel');

    const panel = document.createElement('div');
    panel.className = 'panel';
    panel.id = 'atende-panel';
    panel.hidden = true;
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-modal', 'false');
    panel.setAttribute('aria-labelledby', 'atende-panel-title');

    const bar = document.createElement('div');
    bar.className = 'panel__bar';
    const title = document.createElement('h2');
    title.className = 'panel__title';
    title.id = 'atende-panel-title';
    title.textContent = t('widget.title');
    const closeButton = document.createElement('button');
    closeButton.type = 'button';
    closeButton.className = 'close';
    closeButton.setAttribute('aria-label', t('widget.close'));
    closeButton.title = t('widget.close');
    closeButton.append(svg(ICON_CLOSE));
    bar.append(title, closeButton);
    panel.append(bar);

    root.append(panel, launcher);
    document.body.append(host);

    let iframe = null;
    let frameReady = false;

    function frameSrc() {
      const url = new URL(`${base}/`);
      url.searchParams.set('embed', '1');
      url.searchParams.set('lang', lang);
      return url.href;
    }

    function focusChat() {
      if (!iframe) return;
      iframe.focus();
      if (frameReady && iframe.contentWindow) {
        iframe.contentWindow.postMessage({ type: 'atende:focus' }, baseOrigin);
      }
    }

    function isOpen() {
      return !panel.hidden;
    }

    function open() {
      if (isOpen()) {
        focusChat();
        return;
      }
      if (!iframe) {
        iframe = document.createElement('iframe');
        iframe.className = 'frame';
        iframe.title = t('widget.frameTitle');
        iframe.src = frameSrc();
        // Scripts and storage for the chat (allow-same-origin also lets it keep its chat key cookie, which the
        // server sets SameSite=None and Partitioned so it lives in a jar of this portal); new tabs for sources;
        // no navigation of the portal.
        iframe.setAttribute(
          'sandbox',
          'allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox',
        );
        iframe.setAttribute('referrerpolicy', 'strict-origin-when-cross-origin');
        panel.append(iframe);
      }
      panel.hidden = false;
      launcher.setAttribute('aria-expanded', 'true');
      focusChat();
    }

    function close() {
      if (!isOpen()) return;
      panel.hidden = true;
      launcher.setAttribute('aria-expanded', 'false');
      launcher.focus();
    }

    function toggle() {
      if (isOpen()) close();
      else open();
    }

    launcher.addEventListener('click', toggle);
    closeButton.addEventListener('click', close);

    // Esc while focus is in the panel bar or on the button (inside the iframe,
    // the chat page catches Esc itself and posts "atende:close").
    root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && isOpen()) {
        event.preventDefault();
        close();
      }
    });

    window.addEventListener('message', (event) => {
      if (!iframe || event.source !== iframe.contentWindow || event.origin !== baseOrigin) return;
      const data = event.data;
      if (!data || typeof data.type !== 'string') return;
      if (data.type === 'atende:ready') {
        frameReady = true;
        if (isOpen()) focusChat();
      } else if (data.type === 'atende:close') {
        close();
      }
    });

    window.AtendeWidget = { open, close, toggle, isOpen };
  }

  async function init() {
    const strings = await withTimeout(loadStrings(), LOCALE_TIMEOUT_MS, FALLBACK_STRINGS);
    build(strings);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init, { once: true });
  } else {
    init();
  }
})();
