// Proof of work for the web chat (docs/decisions/0039-citizen-traffic-limits.md).
//
// After a burst of requests from one address the server may answer 428 with a puzzle instead of creating a
// conversation or taking a message: find a counter such that SHA-256("<nonce>:<counter>") starts with
// `difficulty` zero bits, then send the same request again with the solution in a header. This file wraps
// fetch() so chat.js needs no change; it is a classic script loaded before chat.js. crypto.subtle exists only
// in secure contexts (HTTPS, localhost): elsewhere the 428 reaches chat.js, which shows its message.
(function () {
  'use strict';

  if (window.__atendePow || !window.fetch || !window.crypto || !window.crypto.subtle) return;
  window.__atendePow = true;

  const plainFetch = window.fetch.bind(window);
  const encoder = new TextEncoder();
  const BATCH = 256; // digests started together: one await per batch instead of one per digest

  function zeroBits(bytes) {
    let bits = 0;
    for (const byte of bytes) {
      if (byte === 0) {
        bits += 8;
        continue;
      }
      return bits + Math.clz32(byte) - 24;
    }
    return bits;
  }

  async function solve(nonce, difficulty) {
    for (let start = 0; start < 2 ** 32; start += BATCH) {
      const digests = [];
      for (let counter = start; counter < start + BATCH; counter += 1) {
        digests.push(crypto.subtle.digest('SHA-256', encoder.encode(`${nonce}:${counter}`)));
      }
      const done = await Promise.all(digests);
      for (let i = 0; i < done.length; i += 1) {
        if (zeroBits(new Uint8Array(done[i])) >= difficulty) return String(start + i);
      }
    }
    throw new Error('no solution');
  }

  async function puzzleOf(response) {
    try {
      const body = await response.clone().json();
      const puzzle = body && body.challenge;
      if (puzzle && puzzle.algorithm === 'sha256' && typeof puzzle.nonce === 'string') return puzzle;
    } catch (_) {
      // not JSON: not ours
    }
    return null;
  }

  window.fetch = async function fetchWithProofOfWork(input, init) {
    const response = await plainFetch(input, init);
    if (response.status !== 428) return response;
    const puzzle = await puzzleOf(response);
    if (!puzzle) return response;
    const counter = await solve(puzzle.nonce, Number(puzzle.difficulty) || 0);
    const headers = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
    headers.set(puzzle.header || 'X-Atende-Proof', `${puzzle.nonce}:${counter}`);
    return plainFetch(input, { ...(init || {}), headers });
  };
})();
