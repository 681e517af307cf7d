/* Correction diffs in the browser: the same view as reviews/diffing.py's correction_diff.
 * Two JSON documents are compared by path, leaf by leaf ($.price: 1299.0 → 999.99); any other
 * texts word by word, cut to the changed hunks with CONTEXT_WORDS unchanged words either side.
 * Also the first/next/previous change buttons of every diff on a page. Untrusted text is only
 * ever written with textContent, never as HTML. */
(function () {
  "use strict";

  const CONTEXT_WORDS = 12;
  const MAX_CELLS = 4000000;
  // The same tokens as reviews/diffing.py: words, single punctuation marks, whitespace runs.
  const TOKEN = /\s+|[\p{L}\p{N}\p{M}_]+|[^\p{L}\p{N}\p{M}_\s]/gu;
  const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

  function tokenize(text) {
    return text.match(TOKEN) || [];
  }

  function wordCount(text) {
    return tokenize(text).filter((t) => t.trim()).length;
  }

  // --- Word diff.
  function wordDiff(oldText, newText) {
    const a = tokenize(oldText);
    const b = tokenize(newText);
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    const ops = [];
    if (start > 0) ops.push(["equal", a.slice(0, start).join("")]);
    const midA = a.slice(start, endA);
    const midB = b.slice(start, endB);
    if (midA.length * midB.length > MAX_CELLS) {
      // Too large for a live LCS: show the changed middle as one replacement.
      if (midA.length) ops.push(["delete", midA.join("")]);
      if (midB.length) ops.push(["insert", midB.join("")]);
    } else {
      lcsOps(midA, midB).forEach((op) => ops.push(op));
    }
    if (endA < a.length) ops.push(["equal", a.slice(endA).join("")]);
    return merge(ops);
  }

  function lcsOps(a, b) {
    const n = a.length;
    const m = b.length;
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[i] === b[j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    const ops = [];
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { ops.push(["equal", a[i]]); i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) { ops.push(["delete", a[i]]); i++; }
      else { ops.push(["insert", b[j]]); j++; }
    }
    while (i < n) ops.push(["delete", a[i++]]);
    while (j < m) ops.push(["insert", b[j++]]);
    return ops;
  }

  function merge(ops) {
    const out = [];
    ops.forEach(([op, text]) => {
      if (!text) return;
      const last = out[out.length - 1];
      if (last && last[0] === op) last[1] += text;
      else out.push([op, text]);
    });
    return out;
  }

  // --- Hunks: the first/last `words` words of an unchanged run, and how many were cut.
  function head(text, words) {
    const kept = [];
    let seen = 0;
    for (const token of tokenize(text)) {
      if (token.trim()) { if (seen === words) break; seen++; }
      kept.push(token);
    }
    return [kept.join(""), wordCount(text) - seen];
  }

  function tail(text, words) {
    const kept = [];
    let seen = 0;
    const tokens = tokenize(text);
    for (let i = tokens.length - 1; i >= 0; i--) {
      if (tokens[i].trim()) { if (seen === words) break; seen++; }
      kept.push(tokens[i]);
    }
    return [kept.reverse().join(""), wordCount(text) - seen];
  }

  function hunks(ops) {
    const result = [];
    let current = [];
    let skipped = 0;
    for (let index = 0; index < ops.length; index++) {
      const [op, text] = ops[index];
      if (op !== "equal") { current.push(ops[index]); continue; }
      const first = index === 0;
      const final = index === ops.length - 1;
      if (first && final) return { hunks: [], skippedAfter: 0 };
      if (first) {
        const [kept, cut] = tail(text, CONTEXT_WORDS);
        skipped = cut;
        current = [["equal", kept]];
      } else if (final) {
        const [kept, cut] = head(text, CONTEXT_WORDS);
        result.push({ skippedBefore: skipped, ops: current.concat([["equal", kept]]) });
        return { hunks: result, skippedAfter: cut };
      } else if (wordCount(text) <= 2 * CONTEXT_WORDS) {
        current.push(ops[index]);
      } else {
        result.push({ skippedBefore: skipped, ops: current.concat([["equal", head(text, CONTEXT_WORDS)[0]]]) });
        skipped = wordCount(text) - 2 * CONTEXT_WORDS;
        current = [["equal", tail(text, CONTEXT_WORDS)[0]]];
      }
    }
    if (current.length) result.push({ skippedBefore: skipped, ops: current });
    return { hunks: result, skippedAfter: 0 };
  }

  // --- JSON: a small parser that keeps each number as written (1299.0 stays 1299.0).
  function parseJson(text) {
    let at = 0;
    const fail = (what) => {
      const before = text.slice(0, at);
      const line = before.split("\n").length;
      const column = at - before.lastIndexOf("\n");
      throw new SyntaxError(`${what} at line ${line}, column ${column}`);
    };
    const space = () => { while (at < text.length && " \t\n\r".includes(text[at])) at++; };
    const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
    function value() {
      space();
      const c = text[at];
      if (c === "{") {
        at++;
        const members = [];
        space();
        if (text[at] === "}") { at++; return { t: "object", members }; }
        for (;;) {
          space();
          if (text[at] !== "\"") fail("Expected a quoted key");
          const key = string().v;
          space();
          if (text[at] !== ":") fail("Expected ':'");
          at++;
          members.push([key, value()]);
          space();
          if (text[at] === ",") { at++; continue; }
          if (text[at] === "}") { at++; return { t: "object", members }; }
          fail("Expected ',' or '}'");
        }
      }
      if (c === "[") {
        at++;
        const items = [];
        space();
        if (text[at] === "]") { at++; return { t: "array", items }; }
        for (;;) {
          items.push(value());
          space();
          if (text[at] === ",") { at++; continue; }
          if (text[at] === "]") { at++; return { t: "array", items }; }
          fail("Expected ',' or ']'");
        }
      }
      if (c === "\"") return string();
      for (const word of ["true", "false", "null"]) {
        if (text.startsWith(word, at)) { at += word.length; return { t: "literal", raw: word }; }
      }
      NUMBER.lastIndex = at;
      const number = NUMBER.exec(text);
      if (number) { at += number[0].length; return { t: "number", raw: number[0] }; }
      return fail("Unexpected character");
    }
    function string() {
      STRING.lastIndex = at;
      const match = STRING.exec(text);
      if (!match) fail("Unterminated or invalid string");
      at += match[0].length;
      return { t: "string", v: JSON.parse(match[0]) };
    }
    const trimmed = text.trim();
    if (!trimmed || !"[{".includes(trimmed[0])) return null;
    const root = value();
    space();
    if (at !== text.length) fail("Unexpected text after the document");
    return root;
  }

  function tryParseJson(text) {
    try { return { value: parseJson(text), error: "" }; }
    catch (error) { return { value: null, error: error.message }; }
  }

  // The same encoding as diffing.py's _encode: ", " and ": ", keys sorted.
  function encode(node) {
    if (!node) return "";
    switch (node.t) {
      case "object": {
        const members = node.members.slice().sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
        return "{" + members.map(([k, v]) => JSON.stringify(k) + ": " + encode(v)).join(", ") + "}";
      }
      case "array": return "[" + node.items.map(encode).join(", ") + "]";
      case "string": return JSON.stringify(node.v);
      default: return node.raw;
    }
  }

  // Leaves equal as Python sees them: integers by their digits, other numbers by value.
  function sameLeaf(a, b) {
    if (a.t === "number" && b.t === "number") {
      const integer = (raw) => !/[.eE]/.test(raw);
      if (integer(a.raw) !== integer(b.raw)) return false;
      return integer(a.raw) ? BigInt(a.raw) === BigInt(b.raw) : Number(a.raw) === Number(b.raw);
    }
    return encode(a) === encode(b);
  }

  function jsonPath(path) {
    return "$" + path.map((key) => (typeof key === "number"
      ? `[${key}]`
      : IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`)).join("");
  }

  function jsonChanges(a, b, path, out) {
    if (a && b && a.t === "object" && b.t === "object") {
      const lookup = (node) => new Map(node.members);
      const left = lookup(a);
      const right = lookup(b);
      const keys = Array.from(left.keys()).concat(Array.from(right.keys()).filter((k) => !left.has(k)));
      keys.forEach((key) => jsonChanges(left.get(key), right.get(key), path.concat([key]), out));
      return;
    }
    if (a && b && a.t === "array" && b.t === "array") {
      for (let i = 0; i < Math.max(a.items.length, b.items.length); i++) {
        jsonChanges(a.items[i], b.items[i], path.concat([i]), out);
      }
      return;
    }
    if (!a || !b || a.t !== b.t || !sameLeaf(a, b)) {
      out.push({ path: jsonPath(path), old: encode(a), new: encode(b) });
    }
  }

  /* The diff of a correction: {paths: [...]} for two JSON documents, else
   * {hunks, skippedAfter, added, removed}; jsonError says why `newText` is not
   * JSON when `oldText` is. */
  function correctionDiff(oldText, newText) {
    const before = tryParseJson(oldText);
    if (before.value) {
      const after = tryParseJson(newText);
      if (after.value) {
        const paths = [];
        jsonChanges(before.value, after.value, [], paths);
        return { paths, size: paths.length };
      }
      const textual = correctionDiffText(oldText, newText);
      textual.jsonError = after.error || "not a JSON object or array";
      return textual;
    }
    return correctionDiffText(oldText, newText);
  }

  function correctionDiffText(oldText, newText) {
    const ops = wordDiff(oldText, newText);
    const cut = hunks(ops);
    let added = 0;
    let removed = 0;
    ops.forEach(([op, text]) => {
      if (op === "insert") added += wordCount(text);
      if (op === "delete") removed += wordCount(text);
    });
    return { paths: null, hunks: cut.hunks, skippedAfter: cut.skippedAfter, added, removed, size: cut.hunks.length };
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function skip(words) {
    return element("div", "hitl-diff-skip", `… ${words.toLocaleString()} unchanged word${words === 1 ? "" : "s"} …`);
  }

  /* Fill `box` (a .hitl-diff) with the markup of templates/admin/reviews/_correction_diff.html. */
  function render(box, diff) {
    const fragment = document.createDocumentFragment();
    if (diff.paths) {
      const table = element("table", "hitl-diff-paths");
      const body = document.createElement("tbody");
      diff.paths.forEach((change) => {
        const kind = !change.old ? "added" : !change.new ? "removed" : "changed";
        const row = element("tr", `hitl-hunk hitl-path-${kind}`);
        const th = document.createElement("th");
        th.appendChild(element("code", "", change.path));
        const td = document.createElement("td");
        if (change.old) td.appendChild(element("del", "", change.old));
        if (change.old && change.new) {
          td.appendChild(document.createTextNode(" "));
          td.appendChild(element("span", "hitl-arrow", "→"));
          td.appendChild(document.createTextNode(" "));
        }
        if (change.new) td.appendChild(element("ins", "", change.new));
        row.append(th, td);
        body.appendChild(row);
      });
      if (!diff.paths.length) {
        const row = document.createElement("tr");
        row.appendChild(element("td", "hitl-diff-none", "No change."));
        body.appendChild(row);
      }
      table.appendChild(body);
      fragment.appendChild(table);
    } else {
      diff.hunks.forEach((hunk) => {
        if (hunk.skippedBefore) fragment.appendChild(skip(hunk.skippedBefore));
        const node = element("div", "hitl-hunk");
        hunk.ops.forEach(([op, text]) => {
          node.appendChild(element(op === "equal" ? "span" : op === "delete" ? "del" : "ins", "", text));
        });
        fragment.appendChild(node);
      });
      if (!diff.hunks.length) fragment.appendChild(element("p", "hitl-diff-none", "No change."));
      if (diff.skippedAfter) fragment.appendChild(skip(diff.skippedAfter));
    }
    box.replaceChildren(fragment);
    box.scrollTop = 0;
    const wrap = box.closest(".hitl-diff-wrap");
    if (wrap) delete wrap.dataset.current;
  }

  // --- First / next / previous change, inside the diff box only (the page does not move).
  function go(wrap, where) {
    const box = wrap.querySelector(".hitl-diff");
    const all = Array.from(box.querySelectorAll(".hitl-hunk"));
    if (!all.length) return null;
    const current = wrap.dataset.current === undefined ? -1 : Number(wrap.dataset.current);
    let index = 0;
    if (where === "next") index = current < 0 ? 0 : (current + 1) % all.length;
    if (where === "previous") index = current <= 0 ? all.length - 1 : current - 1;
    wrap.dataset.current = String(index);
    all.forEach((hunk, i) => hunk.classList.toggle("is-current", i === index));
    const target = all[index];
    box.scrollTop += target.getBoundingClientRect().top - box.getBoundingClientRect().top - 4;
    const count = wrap.querySelector(".hitl-diff-position");
    if (count) count.textContent = `change ${index + 1} of ${all.length}`;
    return target;
  }

  function attach(wrap) {
    const first = wrap.querySelector(".hitl-diff-first");
    const next = wrap.querySelector(".hitl-diff-next");
    if (!wrap.querySelector(".hitl-diff-position")) {
      const position = element("span", "hitl-diff-position ws-muted", "");
      wrap.querySelector(".hitl-diff-nav").appendChild(position);
    }
    if (first) first.addEventListener("click", () => go(wrap, "first"));
    if (next) next.addEventListener("click", () => go(wrap, "next"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".hitl-diff-wrap").forEach(attach);
  });

  window.hitlDiff = { correctionDiff, render, go, wordCount, parseJson };
})();
