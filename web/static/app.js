/* Ask page and widget: a chat thread over POST /api/ask, sortable trial tables, widget height for embed.js.
   Everything is built with DOM APIs and textContent: no HTML from the server or the user is ever parsed. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function docLink(docId, passageId, start, end) {
    var params = [];
    if (passageId) params.push("p=" + encodeURIComponent(passageId));
    if (start !== null && start !== undefined) params.push("hl=" + start + "-" + end);
    return "/documents/" + encodeURIComponent(docId) + (params.length ? "?" + params.join("&") : "") +
      (passageId ? "#p-" + passageId : "");
  }

  var newTab = false;
  function link(href, text, attrs) {
    var a = el("a", Object.assign({ href: href }, attrs || {}), [text]);
    if (newTab && href.charAt(0) !== "#") { a.target = "_blank"; a.rel = "noopener"; }
    return a;
  }

  function citedText(text, prefix) {
    var p = el("p", { "class": "answer-text" });
    var re = /\[(\d+)\]/g, last = 0, m;
    while ((m = re.exec(text)) !== null) {
      p.appendChild(document.createTextNode(text.slice(last, m.index)));
      p.appendChild(el("a", { "class": "cite", href: "#" + prefix + "-p" + m[1], "aria-label": "source " + m[1] },
        ["[" + m[1] + "]"]));
      last = re.lastIndex;
    }
    p.appendChild(document.createTextNode(text.slice(last)));
    return p;
  }

  function passageCard(p, n, prefix) {
    var id = prefix + "-p" + n, first = p.highlights.length ? p.highlights[0] : null;
    var body = el("p", { "class": "passage" + (p.kind === "table" ? " table-text" : "") });
    var pos = p.start;
    p.highlights.forEach(function (h) {
      if (h.start > pos) body.appendChild(document.createTextNode(p.text.slice(pos - p.start, h.start - p.start)));
      body.appendChild(el("mark", {}, [p.text.slice(Math.max(h.start, pos) - p.start, h.end - p.start)]));
      pos = Math.max(pos, h.end);
    });
    body.appendChild(document.createTextNode(p.text.slice(pos - p.start)));
    return el("article", { "class": "card", id: id, "aria-labelledby": id + "-h" }, [
      el("h4", { id: id + "-h" }, [
        el("span", { "class": "num" }, ["[" + n + "]"]),
        link(docLink(p.doc_id, p.id, first ? first.start : null, first ? first.end : null), p.title,
          { "class": "doc-link" })
      ]),
      p.section.length ? el("p", { "class": "section-path" }, [p.section.join(" › ")]) : null,
      body,
      p.kind === "table" ? el("p", { "class": "note" }, ["Table text (OCR): may contain misprints."]) : null
    ]);
  }

  function trialLabel(t) {
    return t.label || t.name || (t.nct_ids || []).join(", ") || t.id;
  }

  function csvCell(v) {
    var s = Array.isArray(v) ? v.join("; ") : (v === null || v === undefined ? "" : String(v));
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function trialsCsv(trials) {
    var cols = ["id", "name", "nct_ids", "phase", "interventions", "drug_classes", "conditions", "setting"];
    var rows = [cols.concat(["outcomes", "doc_id", "start", "end", "quote"])];
    trials.forEach(function (t) {
      var outcomes = (t.outcomes || []).map(function (o) { return o.measure + " " + o.value; }).join("; ");
      rows.push(cols.map(function (c) { return t[c]; }).concat([outcomes, t.doc_id, t.start, t.end, t.quote]));
    });
    return rows.map(function (r) { return r.map(csvCell).join(","); }).join("\r\n") + "\r\n";
  }

  function trialsTable(trials, caption) {
    var cols = ["Trial", "Phase", "Interventions", "Classes", "Conditions", "Outcomes"];
    var head = el("tr", {}, cols.map(function (c, i) {
      return el("th", { scope: "col" }, [el("button", { type: "button", "class": "sort", "data-col": i }, [c])]);
    }));
    var rows = trials.map(function (t) {
      var first = [link(docLink(t.doc_id, t.passage_id, t.start, t.end), trialLabel(t),
        { title: "Read the quote in its document" })];
      var label = trialLabel(t);
      var ncts = (t.nct_ids || []).filter(function (n) { return label.indexOf(n) < 0; });
      if (ncts.length) first.push(el("br"), el("span", { "class": "muted" }, [ncts.join(", ")]));
      var cond = [(t.conditions || []).join(", ") || "—"];
      if (t.setting && t.setting.length) cond.push(el("br"), el("span", { "class": "muted" }, [t.setting.join(", ")]));
      var outcomes = (t.outcomes || []).map(function (o) {
        return o.measure + " " + o.value + (o.detail ? " (" + o.detail + ")" : "");
      }).join("; ") || "—";
      return el("tr", {}, [el("td", {}, first), el("td", { "data-label": "Phase" }, [t.phase || "—"]),
        el("td", { "data-label": "Interventions" }, [(t.interventions || []).join(" + ")]),
        el("td", { "data-label": "Classes" }, [(t.drug_classes || []).join(", ")]),
        el("td", { "data-label": "Conditions" }, cond), el("td", { "data-label": "Outcomes" }, [outcomes])]);
    });
    var csv = "data:text/csv;charset=utf-8," + encodeURIComponent(trialsCsv(trials));
    var json = "data:application/json;charset=utf-8," + encodeURIComponent(JSON.stringify(trials));
    return el("div", { "class": "trials" }, [
      el("div", { "class": "table-wrap", role: "region", "aria-label": caption, tabindex: "0" }, [
        el("table", { "class": "sortable" }, [el("caption", {}, [caption]), el("thead", {}, [head]), el("tbody", {}, rows)])
      ]),
      el("p", { "class": "downloads" }, ["Download: ", el("a", { href: csv, download: "trials.csv" }, ["CSV"]), " · ",
        el("a", { href: json, download: "trials.json" }, ["JSON"])])
    ]);
  }

  function documentTitle(id) {
    var box = document.querySelector('form.ask input[name=documents][value="' + CSS.escape(id) + '"]');
    return box && box.parentNode ? box.parentNode.textContent.trim() : id;
  }

  function answerBlock(a, prefix, permalink) {
    var parts = [el("h3", { id: prefix + "-q", "class": "question" }, [a.question])];
    if (a.resolved_question !== a.question) parts.push(el("p", { "class": "resolved" }, ["Read as: " + a.resolved_question]));
    var scope = (a.reading && a.reading.documents) || [];
    if (scope.length) {
      var only = [document.createTextNode("Only from: ")];
      scope.forEach(function (d, i) {
        if (i) only.push(document.createTextNode("; "));
        only.push(link("/documents/" + encodeURIComponent(d), documentTitle(d)));
      });
      parts.push(el("p", { "class": "doc-scope muted" }, only));
    }
    parts.push(citedText(a.answer, prefix));
    if (a.reason_note) parts.push(el("p", { "class": "reason muted" }, [a.reason_note]));
    if (a.abstained) parts.push(el("h4", { "class": "related" }, ["Related passages"]));
    var reading = a.reading || {};
    if (reading.filter_summary) {
      var within = reading.scope ? " (within the " + reading.scope.length + " trials of the previous answer)" : "";
      parts.push(el("p", { "class": "trial-filter muted" }, ["Trial filter: " + reading.filter_summary + within]));
    }
    if (a.trials.length) parts.push(trialsTable(a.trials, "Trials matching this question"));
    if (a.trials.length && a.trials_total > a.trials.length) {
      parts.push(el("p", { "class": "trials-more muted" }, [
        "The first " + a.trials.length + " of " + a.trials_total.toLocaleString("en") + " matching trials are listed: ",
        link("/trials?q=" + encodeURIComponent(a.resolved_question), "all of them on the trials page"), "."
      ]));
    }
    if (a.nearest_trials && a.nearest_trials.length) {  /* no trial met the question: the closest records, said so */
      parts.push(trialsTable(a.nearest_trials, "Nearest records (they do not meet every part of the question)"));
    }
    parts.push(el("details", { "class": "sources", open: "" }, [
      el("summary", {}, ["Sources: " + a.passages.length + " passages"]),
      el("div", { "class": "cards" }, a.passages.map(function (p, i) { return passageCard(p, i + 1, prefix); }))
    ]));
    parts.push(el("p", { "class": "answer-meta" }, [link(permalink, "Permalink to this answer")]));
    return el("article", { "class": "answer" + (a.abstained ? " abstained" : ""), "aria-labelledby": prefix + "-q" }, parts);
  }

  /* ---- sortable tables ---- */
  function sortKey(cell) {
    var text = cell.textContent.trim();
    return text === "—" ? "\uffff" : text.toLowerCase();
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("th button.sort");
    if (!button) return;
    var th = button.parentNode, table = th.closest("table"), col = Number(button.getAttribute("data-col"));
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var c = sortKey(x.cells[col]).localeCompare(sortKey(y.cells[col]), undefined, { numeric: true });
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });

  /* a citation opens its (possibly collapsed) list of sources before the browser scrolls to the card */
  document.addEventListener("click", function (ev) {
    var cite = ev.target.closest && ev.target.closest("a.cite");
    var card = cite && document.getElementById(cite.getAttribute("href").slice(1));
    var sources = card && card.closest("details");
    if (sources) sources.open = true;
  });

  /* ---- widget height, for embed.js in the host page ---- */
  var widget = document.body.classList.contains("widget");
  if (widget && window.parent !== window) {
    var lastHeight = 0;
    var postHeight = function () {
      var h = Math.ceil(document.body.getBoundingClientRect().height);
      if (h !== lastHeight) {
        lastHeight = h;
        window.parent.postMessage({ type: "qa-embed:height", height: h }, "*");
      }
    };
    if (window.ResizeObserver) new ResizeObserver(postHeight).observe(document.body);
    window.addEventListener("load", postHeight);
    postHeight();
  }

  /* ---- the chat thread ---- */
  var form = document.querySelector("form.ask");
  var thread = document.querySelector(".thread");
  if (!form || !thread || !window.fetch) return;
  newTab = form.hasAttribute("data-new-tab");
  var input = form.querySelector("input[name=q]");
  var cidField = form.querySelector("input[name=cid]");
  var button = form.querySelector("button[type=submit]");
  var label = form.querySelector("label");
  var turns = Number(thread.getAttribute("data-turns") || 0);

  function setRel(rel, href) {
    var node = document.querySelector('link[rel="' + rel + '"]');
    if (node) node.setAttribute("href", href);
  }

  function submitQuestion(question) {
    question = question.trim();
    if (!question) return;
    turns += 1;
    var prefix = "a" + turns;
    var pending = el("p", { "class": "pending", role: "status" }, ["Searching the papers for: " + question]);
    thread.appendChild(pending);
    button.disabled = true;
    var body = { question: question };
    if (cidField.value) body.conversation_id = cidField.value;
    var boxes = form.querySelectorAll("input[name=documents][type=checkbox]");
    if (boxes.length) {  // the ticked boxes are the filter; none ticked lifts it
      body.documents = Array.prototype.filter.call(boxes, function (b) { return b.checked; })
        .map(function (b) { return b.value; });
    }
    fetch(form.getAttribute("data-api"), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      if (!res.ok) throw new Error(res.data && res.data.error ? res.data.error.message : "the request failed");
      var a = res.data;
      var permalink = "/?q=" + encodeURIComponent(a.resolved_question);
      var scope = (a.reading && a.reading.documents) || [];
      if (scope.length) permalink += "&documents=" + encodeURIComponent(scope.join(","));
      // keep the thread short: earlier answers fold their sources (a citation unfolds them)
      thread.querySelectorAll("details.sources").forEach(function (d) { d.open = false; });
      thread.replaceChild(answerBlock(a, prefix, permalink), pending);
      cidField.value = a.conversation_id;
      input.value = "";
      if (label) label.textContent = "Ask a follow-up question";
      input.setAttribute("placeholder", "e.g. What about nivolumab?");
      if (!widget && window.history && history.replaceState) {
        history.replaceState(null, "", permalink);
        setRel("canonical", permalink);
        setRel("alternate", permalink + "&format=json");
      }
      var added = document.getElementById(prefix + "-q");
      if (added && added.scrollIntoView) added.scrollIntoView({ block: "start" });
    }).catch(function (err) {
      thread.replaceChild(el("p", { "class": "error", role: "alert" }, ["Could not answer: " + err.message]), pending);
    }).then(function () {
      button.disabled = false;
      input.focus();
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submitQuestion(input.value);
  });
  document.querySelectorAll("a[data-question]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      input.value = a.getAttribute("data-question");
      submitQuestion(input.value);
    });
  });
})();
