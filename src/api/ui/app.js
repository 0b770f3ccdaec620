/*
 * Nurion console: a hash-routed single-page app over the coordinator's JSON API (/api/v1).
 * No framework and no external resources. Every server string goes through esc() before it
 * reaches the DOM; events are bound by delegation on data-click / data-input / data-change /
 * data-submit attributes, so the page needs no inline handlers (the CSP forbids them).
 * Each page mounts a static skeleton once, then refresh() fetches and render() patches only the
 * parts whose HTML changed, so live updates neither flicker nor move the scroll position.
 */
'use strict';
(function () {
  const store = window.localStorage, session = window.sessionStorage;
  store.removeItem('nurion.token'); /* the token lives for the browser session only */
  const cfg = {
    token: session.getItem('nurion.token') || '',
    interval: Number(store.getItem('nurion.interval')) || 2000,
    theme: store.getItem('nurion.theme') || 'system',
  };
  const PAGE = 50; /* rows per page of job, split and partition tables */
  const SERIES_POINTS = 120; /* buckets asked for per stage chart */
  const SERIES_MIN_STEP = 10; /* seconds; stages report metrics every 5 s */
  const SERIES_WINDOW = 6 * 3600; /* seconds of history the stage charts show at most */

  function applyTheme() {
    let t = cfg.theme;
    if (t !== 'light' && t !== 'dark')
      t = window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
    document.documentElement.dataset.theme = t;
  }
  applyTheme();

  /* ---- formatting ------------------------------------------------------------------------ */
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (v) => String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, (c) => ESC[c]);
  const enc = encodeURIComponent;
  const nf = new Intl.NumberFormat('en-US');
  const dash = '<span class="muted">–</span>';
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const fmtNum = (v) => (isNum(v) ? esc(nf.format(Math.round(v))) : dash);
  const fmtRate = (v) => (isNum(v) ? esc(v >= 100 ? nf.format(Math.round(v)) : v.toFixed(1)) : dash);
  function fmtDur(s) {
    if (!isNum(s) || s < 0) return dash;
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return h ? `${h}h ${m}m` : m ? `${m}m ${x}s` : `${x}s`;
  }
  function fmtBytes(b) {
    if (!isNum(b)) return dash;
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return `${i ? b.toFixed(1) : b} ${u[i]}`;
  }
  function fmtTime(iso) {
    if (!iso) return dash;
    const d = new Date(iso);
    if (isNaN(d.getTime())) return esc(iso);
    return `<time datetime="${esc(iso)}">${esc(d.toLocaleString())}</time>`;
  }
  const secsBetween = (a, b) => (a ? ((b ? new Date(b) : new Date()) - new Date(a)) / 1000 : null);
  const cls = (s) => String(s || 'unknown').toLowerCase().replace(/[^a-z_]/g, '');
  const badge = (s) => `<span class="badge st-${cls(s)}">${esc(s || 'unknown')}</span>`;
  function bar(p, label) {
    if (!isNum(p)) return dash;
    const pct = Math.max(0, Math.min(100, p * 100));
    return `<progress max="100" value="${pct.toFixed(1)}" aria-label="${esc(label)} progress"></progress>` +
      ` <span class="pct">${Math.floor(pct)}%</span>`;
  }
  const short = (s, n) => (String(s).length > n ? String(s).slice(0, n - 1) + '…' : String(s));
  const jobHref = (job) => `#/jobs/${enc(job)}`;
  const stageHref = (job, st) => `${jobHref(job)}/stages/${enc(st)}`;
  const lineageHref = (job, split) => `${jobHref(job)}/lineage` + (split ? `?split=${enc(split)}` : '');

  /* ---- API ------------------------------------------------------------------------------- */
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    if (cfg.token) headers.Authorization = 'Bearer ' + cfg.token;
    const init = { method: opts.method || 'GET', headers, cache: 'no-store' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    const r = await fetch(path.charAt(0) === '/' ? path : '/api/v1/' + path, init);
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!r.ok) {
      const e = (data && data.error) || {};
      if (r.status === 401) {
        const why = cfg.token ? 'refused' : 'required';
        if (!opts.quiet) authNeeded(why);
        throw new ApiError(401, 'unauthorized', AUTH_MSG[why]);
      }
      throw new ApiError(r.status, e.code || 'http_' + r.status, e.message || `HTTP ${r.status}`);
    }
    return data;
  }

  /* A 401 sends the user to the Configuration page, which says why and comes back after. */
  const AUTH_MSG = {
    required: 'The coordinator requires an API token: enter it below.',
    refused: 'The coordinator refused the API token: enter a valid one.',
  };
  function authNeeded(why) {
    if (cur && cur.page === configPage) {
      configPage.auth(why);
      return;
    }
    const from = location.hash && location.hash !== '#' ? location.hash : '#/';
    location.hash = `#/config?auth=${why}&from=${enc(from)}`;
  }

  /* ---- page runtime ---------------------------------------------------------------------- */
  let cur = null;
  const $ = (id) => document.getElementById(id);
  function setStatus(text, bad) {
    const el = $('status');
    if (!el) return;
    el.textContent = text;
    el.className = bad ? 'bad' : '';
  }
  /* Replace an element's content only when its HTML changed. */
  function patch(id, html) {
    const el = $(id);
    if (!el || el._nuHtml === html) return;
    const top = el.scrollTop, left = el.scrollLeft;
    el.innerHTML = html;
    el._nuHtml = html;
    el.scrollTop = top;
    el.scrollLeft = left;
  }
  function pager(name, page, pages, extra) {
    if (pages <= 1 && !extra) return '';
    return `<button type="button" class="btn" data-click="${name}" data-step="-1" ${page <= 0 ? 'disabled' : ''}>Previous</button>` +
      ` <span>Page ${page + 1} of ${pages}${extra || ''}</span> ` +
      `<button type="button" class="btn" data-click="${name}" data-step="1" ${page >= pages - 1 ? 'disabled' : ''}>Next</button>`;
  }
  const th = (cols) => '<tr>' + cols.map((c) => `<th scope="col">${c}</th>`).join('') + '</tr>';
  function table(id, cols, caption) {
    return `<div class="table-wrap"><table class="grid" id="${id}"><caption class="sr-only">${esc(caption)}</caption>` +
      `<thead>${th(cols)}</thead><tbody id="${id}-body"></tbody></table></div>`;
  }
  /* A <dl> whose dt/dd pairs are wrapped, so a grid lays them out as pairs. */
  const pairs = (html) => html.replace(/<dt>/g, '<div><dt>').replace(/<\/dd>/g, '</dd></div>');
  const emptyRow = (n, text) => `<tr><td colspan="${n}" class="muted">${esc(text)}</td></tr>`;
  const crumbs = (parts) => `<nav class="crumbs" aria-label="Breadcrumb"><a href="#/">Jobs</a>` +
    parts.map((p) => ` <span aria-hidden="true">›</span> ${p}`).join('') + '</nav>';

  function navigate() {
    if (cur && cur.timer) clearTimeout(cur.timer);
    let h = location.hash.replace(/^#/, '') || '/';
    let q = '';
    const qi = h.indexOf('?');
    if (qi >= 0) { q = h.slice(qi + 1); h = h.slice(0, qi); }
    const seg = h.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch (e) { return s; } });
    const [page, params] = route(seg);
    const ctx = { page, params, query: new URLSearchParams(q), st: {}, actions: {}, timer: 0 };
    cur = ctx;
    document.querySelectorAll('[data-nav]').forEach((a) => {
      const on = a.dataset.nav === (page === configPage ? 'config' : 'jobs');
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    document.title = 'Nurion · ' + page.title(params);
    $('app').innerHTML = page.mount(ctx);
    if (page.init) page.init(ctx);
    tick(ctx);
  }
  async function tick(ctx) {
    if (ctx !== cur) return;
    if (!document.hidden || !ctx.loaded) {
      try {
        await ctx.page.refresh(ctx);
        ctx.loaded = true;
        if (ctx === cur) setStatus('Updated ' + new Date().toLocaleTimeString(), false);
      } catch (e) {
        if (ctx === cur) {
          setStatus(e.message || String(e), true);
          if (ctx.page.failed) ctx.page.failed(ctx, e);
        }
      }
    }
    if (ctx === cur && ctx.page.live !== false) ctx.timer = setTimeout(() => tick(ctx), cfg.interval);
  }
  function route(seg) {
    if (seg.length === 0) return [portal, {}];
    if (seg.length === 1 && seg[0] === 'config') return [configPage, {}];
    if (seg[0] === 'jobs' && seg.length >= 2) {
      const job = seg[1];
      if (seg.length === 2) return [jobPage, { job }];
      if (seg.length === 4 && seg[2] === 'stages') return [stagePage, { job, stage: seg[3] }];
      if (seg.length === 5 && seg[2] === 'instances')
        return [instancePage, { job, stage: seg[3], instance: seg[4] }];
      if (seg.length === 3 && seg[2] === 'lineage') return [lineagePage, { job }];
      if (seg.length === 3 && seg[2] === 'exceptions') return [exceptionsPage, { job }];
    }
    return [notFound, {}];
  }
  const globalActions = {
    theme() {
      const dark = document.documentElement.dataset.theme === 'dark';
      cfg.theme = dark ? 'light' : 'dark';
      store.setItem('nurion.theme', cfg.theme);
      applyTheme();
      if (cur && cur.page === configPage) configPage.render(cur);
    },
    copy(el) {
      const text = el.dataset.text || '';
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => setStatus('Copied to the clipboard', false), () => setStatus('Could not copy', true));
    },
  };
  for (const type of ['click', 'input', 'change', 'submit']) {
    document.addEventListener(type, (ev) => {
      const el = ev.target.closest && ev.target.closest(`[data-${type}]`);
      if (!el) return;
      const name = el.dataset[type];
      const fn = (cur && cur.actions[name]) || globalActions[name];
      if (!fn) return;
      if (type === 'click' || type === 'submit') ev.preventDefault();
      fn(el, ev);
    });
  }
  window.addEventListener('hashchange', navigate);
  document.addEventListener('DOMContentLoaded', navigate);

  /* ---- portal ---------------------------------------------------------------------------- */
  const GROUPS = [
    ['all', 'All', () => true],
    ['running', 'Running', (s) => s === 'running' || s === 'submitted'],
    ['succeeded', 'Completed', (s) => s === 'succeeded'],
    ['failed', 'Failed', (s) => s === 'failed'],
    ['cancelled', 'Cancelled', (s) => s === 'cancelled'],
  ];
  const portal = {
    title: () => 'Jobs',
    mount: () => '<h1>Jobs</h1><div class="toolbar"><div class="tabs" role="group" aria-label="Filter by state" id="tabs"></div>' +
      '<label class="search">Search <input type="search" id="job-search" data-input="search" placeholder="job id, state or error" autocomplete="off"></label></div>' +
      table('jobs', ['Job', 'State', 'Stages', 'Created', 'Duration', 'Error'], 'Jobs') +
      '<div class="pager" id="jobs-pager"></div>',
    init(ctx) {
      const g = ctx.query.get('state');
      ctx.st = { group: GROUPS.some((x) => x[0] === g) ? g : 'all', q: '', page: 0, jobs: null };
      ctx.actions.group = (el) => { ctx.st.group = el.dataset.group; ctx.st.page = 0; portal.render(ctx); };
      ctx.actions.search = (el) => { ctx.st.q = el.value.trim().toLowerCase(); ctx.st.page = 0; portal.render(ctx); };
      ctx.actions.jobsPage = (el) => { ctx.st.page += Number(el.dataset.step); portal.render(ctx); };
    },
    async refresh(ctx) {
      const d = await api('jobs?limit=1000');
      ctx.st.jobs = d.items || [];
      ctx.st.more = !!d.next;
      portal.render(ctx);
    },
    render(ctx) {
      const st = ctx.st;
      if (!st.jobs) return;
      patch('tabs', GROUPS.map(([key, label, f]) => {
        const n = st.jobs.filter((j) => f(j.state)).length;
        return `<button type="button" class="tab" data-click="group" data-group="${key}" aria-pressed="${st.group === key}">${label} <span class="count">${n}</span></button>`;
      }).join(''));
      const f = GROUPS.find((x) => x[0] === st.group)[2];
      const rows = st.jobs.filter((j) => f(j.state) && (!st.q || [j.id, j.state, j.error].some((v) => v && String(v).toLowerCase().includes(st.q))));
      const pages = Math.max(1, Math.ceil(rows.length / PAGE));
      st.page = Math.max(0, Math.min(st.page, pages - 1));
      patch('jobs-body', rows.length ? rows.slice(st.page * PAGE, st.page * PAGE + PAGE).map((j) =>
        `<tr data-job="${esc(j.id)}"><th scope="row"><a href="${jobHref(j.id)}">${esc(j.id)}</a></th><td>${badge(j.state)}</td>` +
        `<td>${fmtNum(j.stages_succeeded)} / ${fmtNum(j.stages)}</td><td>${fmtTime(j.created_at)}</td>` +
        `<td>${fmtDur(secsBetween(j.started_at, j.finished_at))}</td><td class="err">${esc(j.error || '')}</td></tr>`).join('')
        : emptyRow(6, st.jobs.length ? 'No job matches.' : 'No jobs yet: submit one with POST /api/v1/jobs or `nurion submit`.'));
      patch('jobs-pager', pager('jobsPage', st.page, pages, st.more ? ' (newest 1,000 jobs)' : ''));
    },
  };

  /* ---- DAG ------------------------------------------------------------------------------- */
  function layers(stages) {
    const byId = new Map(stages.map((s) => [s.id, s]));
    const layer = new Map();
    const depth = (s) => {
      if (layer.has(s.id)) return layer.get(s.id);
      layer.set(s.id, 0); /* a cycle (never valid) cannot recurse forever */
      let l = 0;
      for (const u of s.upstream || []) if (byId.has(u)) l = Math.max(l, depth(byId.get(u)) + 1);
      layer.set(s.id, l);
      return l;
    };
    stages.forEach(depth);
    return layer;
  }
  /* A left-to-right graph: cols is an array of columns of nodes {key, x, y}; edges [from, to]. */
  function graphSvg(cols, edges, nodeHtml, label, W, H) {
    const GX = 60, GY = 18, P = 10;
    const pos = new Map();
    let rows = 0;
    cols.forEach((col, ci) => {
      rows = Math.max(rows, col.length);
      col.forEach((n, ri) => pos.set(n.key, { x: P + ci * (W + GX), y: P + ri * (H + GY), n }));
    });
    const width = P * 2 + Math.max(1, cols.length) * (W + GX) - GX, height = P * 2 + Math.max(1, rows) * (H + GY) - GY;
    let out = `<svg class="graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(label)}">` +
      '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>';
    for (const [a, b] of edges) {
      const p = pos.get(a), q = pos.get(b);
      if (!p || !q) continue;
      const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x - 2, y2 = q.y + H / 2, mx = (x1 + x2) / 2;
      out += `<path class="edge" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}" marker-end="url(#arrow)"/>`;
    }
    for (const p of pos.values()) out += nodeHtml(p.n, p.x, p.y, W, H);
    return out + '</svg>';
  }
  function dagSvg(job, stages) {
    const layer = layers(stages);
    const cols = [];
    stages.forEach((s) => { const l = layer.get(s.id); (cols[l] = cols[l] || []).push({ key: s.id, s }); });
    const edges = [];
    stages.forEach((s) => (s.upstream || []).forEach((u) => edges.push([u, s.id])));
    return graphSvg(cols.filter(Boolean), edges, (n, x, y, W, H) => {
      const s = n.s, p = isNum(s.progress) ? Math.max(0, Math.min(1, s.progress)) : 0;
      const pct = isNum(s.progress) ? ` · ${Math.floor(p * 100)}%` : '';
      return `<a href="${stageHref(job, s.id)}" class="node st-${cls(s.state)}" data-stage="${esc(s.id)}" aria-label="stage ${esc(s.id)}: ${esc(s.state)}">` +
        `<title>${esc(s.id)} (${esc(s.operator)}): ${esc(s.state)}</title>` +
        `<rect class="box" x="${x}" y="${y}" width="${W}" height="${H}" rx="6"/>` +
        `<text x="${x + 10}" y="${y + 20}" class="name">${esc(short(s.id, 24))}</text>` +
        `<text x="${x + 10}" y="${y + 38}" class="sub">${esc(short(s.operator, 14))} · ${esc(s.state)}${pct}</text>` +
        `<rect class="pbg" x="${x + 10}" y="${y + H - 12}" width="${W - 20}" height="5" rx="2"/>` +
        `<rect class="pfg" x="${x + 10}" y="${y + H - 12}" width="${((W - 20) * p).toFixed(1)}" height="5" rx="2"/></a>`;
    }, 'Pipeline graph', 190, 64);
  }

  /* ---- job ------------------------------------------------------------------------------- */
  const STAGE_COLS = ['Stage', 'Operator', 'State', 'Progress', 'Splits', 'Rows in', 'Rows out', 'Rows/s', 'ETA', 'Lag', 'Instances', 'Errors', 'Dead letters'];
  const jobPage = {
    title: (p) => 'Job ' + p.job,
    mount(ctx) {
      const j = ctx.params.job;
      return crumbs([`<span>${esc(j)}</span>`]) +
        `<div class="head"><h1>Job <span class="mono">${esc(j)}</span></h1><span id="job-state"></span>` +
        `<div class="actions"><a class="btn" href="${lineageHref(j)}">Lineage</a><a class="btn" href="${jobHref(j)}/exceptions">Exceptions</a>` +
        '<button type="button" class="btn danger" id="cancel-btn" data-click="askCancel" hidden>Cancel job</button></div></div>' +
        '<div id="job-facts" class="facts"></div>' +
        '<section><h2>Pipeline</h2><div id="dag" class="graph-wrap"></div></section>' +
        '<section><h2>Stages</h2>' + table('stages', STAGE_COLS, 'Stages') + '</section>' +
        '<section><h2>Topics</h2><div id="topics"><p class="muted">Loading…</p></div></section>' +
        '<section><h2>Spec</h2><details><summary>Job spec (JSON)</summary><pre id="spec" class="code"></pre></details></section>' +
        '<dialog id="cancel-dialog" aria-labelledby="cancel-title"><form method="dialog">' +
        `<h2 id="cancel-title">Cancel job ${esc(j)}?</h2><p>Every stage of the job stops. Output already committed stays.</p>` +
        '<div class="actions"><button class="btn" value="keep">Keep running</button>' +
        '<button class="btn danger" value="cancel" id="cancel-confirm">Cancel job</button></div></form></dialog>';
    },
    init(ctx) {
      const j = ctx.params.job;
      const dlg = $('cancel-dialog');
      ctx.actions.askCancel = () => dlg.showModal();
      dlg.addEventListener('close', async () => {
        if (dlg.returnValue !== 'cancel') return;
        try {
          await api(`jobs/${enc(j)}/cancel`, { method: 'POST' });
          setStatus(`Job ${j} is being cancelled`, false);
          tick(ctx);
        } catch (e) {
          setStatus('Could not cancel: ' + e.message, true);
        }
      });
    },
    async refresh(ctx) {
      const j = ctx.params.job;
      const doc = await api(`jobs/${enc(j)}`);
      jobPage.render(ctx, doc);
      /* the broker's offsets: every 5 s while the job runs, at once when its state changes
       * (so a finished job shows its final offsets), then every 30 s */
      const now = Date.now(), ended = !['running', 'submitted'].includes(doc.state);
      if (!ctx.st.topicsAt || ctx.st.topicsState !== doc.state || now - ctx.st.topicsAt > (ended ? 30000 : 5000)) {
        ctx.st.topicsAt = now;
        ctx.st.topicsState = doc.state;
        api(`jobs/${enc(j)}/topics`).then((t) => { if (ctx === cur) jobPage.topics(ctx, t, now); },
          (e) => { if (ctx === cur) patch('topics', `<p class="bad">${esc(e.message)}</p>`); });
      }
    },
    render(ctx, d) {
      const j = ctx.params.job, stages = d.stages || [];
      patch('job-state', badge(d.state));
      const running = d.state === 'running' || d.state === 'submitted';
      $('cancel-btn').hidden = !running;
      const ended = stages.filter((s) => s.state === 'succeeded').length;
      patch('job-facts', pairs(`<dl><dt>Created</dt><dd>${fmtTime(d.created_at)}</dd><dt>Started</dt><dd>${fmtTime(d.started_at)}</dd>` +
        `<dt>Finished</dt><dd>${fmtTime(d.finished_at)}</dd><dt>Duration</dt><dd>${fmtDur(secsBetween(d.started_at, d.finished_at))}</dd>` +
        `<dt>Stages done</dt><dd>${ended} / ${stages.length}</dd>` + (d.error ? `<dt>Error</dt><dd class="err">${esc(d.error)}</dd>` : '') + '</dl>'));
      patch('dag', dagSvg(j, stages));
      patch('stages-body', stages.length ? stages.map((s) =>
        `<tr data-stage="${esc(s.id)}"><th scope="row"><a href="${stageHref(j, s.id)}">${esc(s.id)}</a></th><td>${esc(s.operator)}</td><td>${badge(s.state)}</td>` +
        `<td class="progress">${bar(s.progress, s.id)}</td><td>${fmtNum(s.splits_done)} / ${isNum(s.planned_splits) && s.planned_splits >= 0 ? fmtNum(s.planned_splits) : '?'}</td>` +
        `<td>${fmtNum(s.rows_in)}</td><td>${fmtNum(s.rows_out)}</td><td>${fmtRate(s.rows_per_s)}</td><td>${fmtDur(s.eta_s)}</td>` +
        `<td>${fmtNum(s.lag)}</td><td>${fmtNum(s.instances_running)}</td><td>${fmtNum(s.errors)}</td><td>${fmtNum(s.dead_letters)}</td></tr>`).join('')
        : emptyRow(STAGE_COLS.length, 'No stages.'));
      patch('spec', esc(JSON.stringify(d.spec, null, 2)));
    },
    topics(ctx, t, at) {
      const items = (t && t.topics) || [];
      const ends = (x) => {
        const e = x.end_offsets || [];
        const txt = e.map((v) => (isNum(v) ? nf.format(v) : '?')).join(', ');
        return e.length > 8 ? `<span title="${esc(txt)}">${esc(e.slice(0, 8).map((v) => (isNum(v) ? nf.format(v) : '?')).join(', '))}, …</span>` : esc(txt) || dash;
      };
      patch('topics', `<p>Brokers: <code>${esc(t.brokers)}</code> · offsets read at ${esc(clock(at))} (records count offsets: data, end-of-stream markers and transaction markers)</p>` +
        '<div class="table-wrap"><table class="grid" id="topics-table"><caption class="sr-only">Topics</caption><thead>' +
        th(['Topic', 'Kind', 'Stage', 'Partitions', 'Records', 'End offsets', 'Read it with kcat']) + '</thead><tbody>' +
        (items.length ? items.map((x) => `<tr data-topic="${esc(x.name)}"><th scope="row" class="mono">${esc(x.name)}</th><td>${esc(x.kind)}</td><td>${esc(x.stage || '')}</td>` +
          `<td>${fmtNum(x.partitions)}</td><td class="records">${fmtNum(x.records)}${x.note ? `<div class="muted note">${esc(x.note)}</div>` : ''}</td><td class="ends">${ends(x)}</td><td class="cmd"><code>${esc(x.kcat)}</code> ` +
          `<button type="button" class="btn small" data-click="copy" data-text="${esc(x.kcat)}" aria-label="Copy the kcat command for ${esc(x.name)}">Copy</button>` +
          (x.error ? `<div class="bad">${esc(x.error)}</div>` : '') + '</td></tr>').join('') : emptyRow(7, 'No topics.')) + '</tbody></table></div>');
    },
  };

  /* ---- charts ---------------------------------------------------------------------------- */
  const clock = (ms) => new Date(ms).toLocaleTimeString();
  /*
   * A time chart of series `sr` ({since, until, step, points: [{t (ms), …}]}): one line per
   * entry of `lines` ([key, label, css class]); a gap of more than three steps breaks a line.
   */
  function chart(sr, lines, title, id) {
    const W = 560, H = 180, L = 64, B = 24, T = 24, R = 12;
    const pts = (sr && sr.points) || [];
    if (!pts.length) return `<p class="muted">${esc(title)}: no metric samples in this window yet (each instance reports every few seconds).</p>`;
    const t0 = sr.since * 1000, t1 = Math.max(sr.until * 1000, t0 + 1000), gap = 3 * sr.step * 1000;
    const max = Math.max(1, ...pts.map((p) => Math.max(...lines.map((l) => p[l[0]] || 0))));
    const X = (t) => (L + ((t - t0) / (t1 - t0)) * (W - L - R)).toFixed(1);
    const Y = (v) => (T + (1 - (v || 0) / max) * (H - T - B)).toFixed(1);
    const last = pts[pts.length - 1];
    let out = `<svg class="chart" id="${id}-svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)} from ${esc(clock(t0))} to ${esc(clock(t1))}">` +
      `<title>${esc(title)}</title><line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>` +
      `<line class="grid" x1="${L}" y1="${Y(max / 2)}" x2="${W - R}" y2="${Y(max / 2)}"/>` +
      `<text class="tick" x="${L - 6}" y="${T + 4}" text-anchor="end">${esc(nf.format(Math.round(max)))}</text>` +
      `<text class="tick" x="${L - 6}" y="${H - B}" text-anchor="end">0</text>` +
      `<text class="tick" x="${L}" y="${H - 6}">${esc(clock(t0))}</text><text class="tick" x="${W - R}" y="${H - 6}" text-anchor="end">${esc(clock(t1))}</text>` +
      `<text class="tick label" x="${L}" y="${T - 10}">${esc(title)}</text>`;
    let lx = W - R;
    for (const [key, label, c] of lines.slice().reverse()) {
      const txt = `${label} ${isNum(last[key]) ? (last[key] >= 100 ? nf.format(Math.round(last[key])) : last[key].toFixed(1)) : '–'}`;
      out += `<text class="tick legend ${c}" x="${lx}" y="${T - 10}" text-anchor="end">■ ${esc(txt)}</text>`;
      lx -= txt.length * 6.5 + 24;
    }
    for (const [key, , c] of lines) {
      let seg = [], prev = null;
      const flush = () => {
        if (seg.length === 1) out += `<circle class="dot ${c}" cx="${seg[0].split(',')[0]}" cy="${seg[0].split(',')[1]}" r="2.5"/>`;
        else if (seg.length) out += `<polyline class="line ${c}" points="${seg.join(' ')}"/>`;
        seg = [];
      };
      for (const p of pts) {
        if (prev !== null && p.t - prev > gap) flush();
        seg.push(`${X(p.t)},${Y(p[key])}`);
        prev = p.t;
      }
      flush();
    }
    return out + '</svg>';
  }

  /* ---- stage ----------------------------------------------------------------------------- */
  const INST_COLS = ['Instance', 'State', 'PID', 'Host', 'Started', 'Rows out', 'Rows/s', 'RSS', 'CPU time'];
  const PART_COLS = ['Topic', 'Partition', 'Committed', 'End', 'Lag', 'Skew'];
  const stagePage = {
    title: (p) => `Stage ${p.stage} · ${p.job}`,
    mount(ctx) {
      const { job, stage } = ctx.params;
      return crumbs([`<a href="${jobHref(job)}">${esc(job)}</a>`, `<span>${esc(stage)}</span>`]) +
        `<div class="head"><h1>Stage <span class="mono">${esc(stage)}</span></h1><span id="stage-state"></span></div>` +
        '<div id="stage-facts" class="facts"></div>' +
        '<section><h2>Throughput and lag</h2><div class="charts"><div id="chart-rps"></div><div id="chart-lag"></div><div id="chart-inst"></div></div></section>' +
        '<section><h2>Instances</h2>' + table('instances', INST_COLS, 'Instances') + '</section>' +
        '<section><h2>Partitions</h2><div id="skew"></div>' + table('partitions', PART_COLS, 'Partitions') + '<div class="pager" id="parts-pager"></div></section>';
    },
    init(ctx) {
      ctx.st.page = 0;
      ctx.actions.partsPage = (el) => { ctx.st.page += Number(el.dataset.step); stagePage.render(ctx); };
    },
    async refresh(ctx) {
      const { job, stage } = ctx.params;
      const s = await api(`jobs/${enc(job)}/stages/${enc(stage)}`);
      ctx.st.s = s;
      /* the series window: from the stage's start (at most SERIES_WINDOW back) to now, or to
       * just after its end; since is aligned on the step so buckets stay put between updates */
      const now = Date.now() / 1000, sr = ctx.st.sr;
      const start = s.started_at ? Date.parse(s.started_at) / 1000 : now - 900;
      const end = s.finished_at ? Date.parse(s.finished_at) / 1000 + 15 : null;
      const done = end !== null && end < now;
      if (!sr || (!(done && sr.done) && now - ctx.st.srAt >= 4)) {
        const until = Math.ceil(done ? end : now) + 1;
        const from = Math.max(start - 10, until - SERIES_WINDOW);
        const step = Math.max(SERIES_MIN_STEP, Math.ceil((until - from) / SERIES_POINTS));
        const since = Math.floor(Math.min(from, until - 6 * step) / step) * step;
        const d = await api(`jobs/${enc(job)}/stages/${enc(stage)}/metrics?since=${since}&until=${until}&step=${step}`);
        (d.points || []).forEach((p) => { p.t = Date.parse(p.ts); });
        d.done = done;
        ctx.st.sr = d;
        ctx.st.srAt = now;
      }
      stagePage.render(ctx);
    },
    render(ctx) {
      const { job } = ctx.params, s = ctx.st.s;
      if (!s) return;
      const par = s.parallelism || {};
      patch('stage-state', badge(s.state));
      patch('stage-facts', pairs(`<dl><dt>Operator</dt><dd>${esc(s.operator)} (${esc(s.kind)})</dd><dt>Progress</dt><dd>${bar(s.progress, s.id)}</dd>` +
        `<dt>Rows in / out</dt><dd>${fmtNum(s.rows_in)} / ${fmtNum(s.rows_out)}</dd><dt>Rows/s</dt><dd>${fmtRate(s.rows_per_s)}</dd>` +
        `<dt>ETA</dt><dd>${fmtDur(s.eta_s)}</dd><dt>Lag</dt><dd>${fmtNum(s.lag)}</dd>` +
        `<dt>Instances</dt><dd>${fmtNum(s.instances_running)} running (min ${fmtNum(par.min)}, max ${fmtNum(par.max)})${s.frozen ? ' · frozen' : ''}</dd>` +
        `<dt>Splits</dt><dd>${fmtNum(s.splits_done)} / ${isNum(s.planned_splits) && s.planned_splits >= 0 ? fmtNum(s.planned_splits) : '?'}</dd>` +
        `<dt>Errors</dt><dd>${fmtNum(s.errors)}, dead letters ${fmtNum(s.dead_letters)}</dd>` +
        `<dt>Upstream</dt><dd>${(s.upstream || []).map((u) => `<a href="${stageHref(job, u)}">${esc(u)}</a>`).join(', ') || dash}</dd></dl>`));
      patch('chart-rps', chart(ctx.st.sr, [['rows_per_s_in', 'in', 'c-in'], ['rows_per_s_out', 'out', 'c-out']], 'Rows per second', 'chart-rps'));
      patch('chart-lag', chart(ctx.st.sr, [['lag', 'records', 'c-lag']], 'Input lag', 'chart-lag'));
      patch('chart-inst', chart(ctx.st.sr, [['instances', 'now', 'c-inst']], 'Instances reporting', 'chart-inst'));
      const insts = s.instances || [];
      patch('instances-body', insts.length ? insts.map((i) => {
        const m = i.last_metrics || {};
        return `<tr><th scope="row"><a href="${jobHref(job)}/instances/${enc(s.id)}/${enc(i.instance)}">#${esc(i.instance)}</a></th><td>${badge(i.state)}</td>` +
          `<td>${isNum(i.pid) ? esc(i.pid) : dash}</td><td>${esc(i.host || '')}</td><td>${fmtTime(i.started_at)}</td><td>${fmtNum(m.rows_out)}</td>` +
          `<td>${fmtRate(m.rows_per_s)}</td><td>${fmtBytes(m.rss_bytes)}</td><td>${isNum(m.cpu_ms) ? fmtDur(m.cpu_ms / 1000) : dash}</td></tr>`;
      }).join('') : emptyRow(INST_COLS.length, 'No instances.'));
      const ld = s.lag_detail;
      const parts = (ld && ld.partitions) || [];
      const avg = ld && isNum(ld.avg_lag) ? ld.avg_lag : 0;
      patch('skew', ld ? `<p>Total lag ${fmtNum(ld.total_lag)}, max ${fmtNum(ld.max_lag)}, mean ${fmtRate(ld.avg_lag)}; skew ${isNum(ld.skew) ? esc(ld.skew.toFixed(2)) : dash}` +
        (ld.skewed ? ' <span class="badge st-failed">skewed</span>' : '') + '</p>'
        : `<p class="muted">Partition offsets unavailable${s.lag_error ? ': ' + esc(s.lag_error) : ''}.</p>`);
      const pages = Math.max(1, Math.ceil(parts.length / PAGE));
      ctx.st.page = Math.max(0, Math.min(ctx.st.page, pages - 1));
      patch('partitions-body', parts.length ? parts.slice(ctx.st.page * PAGE, ctx.st.page * PAGE + PAGE).map((p) => {
        const hot = avg > 0 && p.lag > 2 * avg;
        return `<tr${hot ? ' class="hot"' : ''}><th scope="row" class="mono">${esc(p.topic)}</th><td>${fmtNum(p.partition)}</td><td>${fmtNum(p.committed)}</td>` +
          `<td>${fmtNum(p.end)}</td><td>${fmtNum(p.lag)}</td><td>${hot ? '<span class="badge st-failed">skewed</span>' : ''}</td></tr>`;
      }).join('') : emptyRow(PART_COLS.length, 'This stage reads no partitions.'));
      patch('parts-pager', pager('partsPage', ctx.st.page, pages));
    },
  };

  /* ---- instance -------------------------------------------------------------------------- */
  const instancePage = {
    title: (p) => `Instance ${p.stage}#${p.instance} · ${p.job}`,
    mount(ctx) {
      const { job, stage, instance } = ctx.params;
      return crumbs([`<a href="${jobHref(job)}">${esc(job)}</a>`, `<a href="${stageHref(job, stage)}">${esc(stage)}</a>`, `<span>#${esc(instance)}</span>`]) +
        `<div class="head"><h1>Instance <span class="mono">${esc(stage)}#${esc(instance)}</span></h1><span id="inst-state"></span></div>` +
        '<div id="inst-facts" class="facts"></div><section><h2>Recent errors of this instance</h2>' +
        table('inst-own-errors', ['Time', 'Split', 'Code', 'Message', 'Hint'], 'Recent errors of this instance') + '</section>' +
        '<section><h2>Errors of the stage</h2>' +
        table('inst-errors', ['Code', 'Count', 'Last seen', 'Message', 'Hint'], 'Errors of the stage') + '</section>';
    },
    async refresh(ctx) {
      const { job, stage, instance } = ctx.params;
      const [insts, exc] = await Promise.all([api(`jobs/${enc(job)}/instances`), api(`jobs/${enc(job)}/exceptions`)]);
      const i = (insts.items || []).find((x) => x.stage === stage && String(x.instance) === instance);
      if (!i) throw new ApiError(404, 'not_found', `job "${job}" has no instance ${instance} of stage "${stage}"`);
      const m = i.last_metrics || {};
      const prev = ctx.st.m;
      let cpu = ctx.st.cpu;
      if (prev && isNum(m.cpu_ms) && isNum(prev.cpu_ms) && m.ts > prev.ts) cpu = (m.cpu_ms - prev.cpu_ms) / (m.ts - prev.ts) * 100;
      ctx.st.m = m;
      ctx.st.cpu = cpu;
      patch('inst-state', badge(i.state));
      patch('inst-facts', pairs(`<dl><dt>PID</dt><dd>${isNum(i.pid) ? esc(i.pid) : dash}</dd><dt>Host</dt><dd>${esc(i.host || '') || dash}</dd>` +
        `<dt>Started</dt><dd>${fmtTime(i.started_at)}</dd><dt>Stopped</dt><dd>${fmtTime(i.stopped_at)}</dd>` +
        `<dt>Uptime</dt><dd>${fmtDur(secsBetween(i.started_at, i.stopped_at))}</dd><dt>Rows in / out</dt><dd>${fmtNum(m.rows_in)} / ${fmtNum(m.rows_out)}</dd>` +
        `<dt>Rows/s</dt><dd>${fmtRate(m.rows_per_s)}</dd><dt>RSS</dt><dd>${fmtBytes(m.rss_bytes)}</dd>` +
        `<dt>CPU</dt><dd>${isNum(m.cpu_ms) ? fmtDur(m.cpu_ms / 1000) : dash}${isNum(cpu) ? ` (${esc(cpu.toFixed(0))}% recently)` : ''}</dd>` +
        `<dt>Lag</dt><dd>${fmtNum(m.total_lag)}</dd><dt>Metrics at</dt><dd>${isNum(m.ts) ? fmtTime(new Date(m.ts).toISOString()) : dash}</dd>` +
        `<dt>Exit reason</dt><dd>${esc(i.reason || '') || dash}</dd></dl>`));
      const own = Array.isArray(i.recent_errors) ? i.recent_errors : [];
      patch('inst-own-errors-body', own.length ? own.map((e) => `<tr><th scope="row">${isNum(e.ts) ? fmtTime(new Date(e.ts).toISOString()) : dash}</th>` +
        `<td class="mono">${e.split ? `<a href="${lineageHref(job, e.split)}">${esc(e.split)}</a>` : dash}</td><td>${esc(e.code || '')}</td>` +
        `<td class="err">${esc(e.message)}</td><td>${esc(e.hint || '')}</td></tr>`).join('') : emptyRow(5, 'No errors on this instance.'));
      const errs = (exc.items || []).filter((e) => e.stage === stage).sort((a, b) => String(b.last_seen).localeCompare(String(a.last_seen)));
      patch('inst-errors-body', errs.length ? errs.slice(0, 20).map((e) => `<tr><th scope="row">${esc(e.code)}</th><td>${fmtNum(e.count)}</td><td>${fmtTime(e.last_seen)}</td>` +
        `<td class="err">${esc(e.sample_message)}</td><td>${esc(e.hint || '')}</td></tr>`).join('') : emptyRow(5, 'No errors.'));
    },
  };

  /* ---- lineage --------------------------------------------------------------------------- */
  const LIN_MAX_COL = 40; /* nodes drawn per graph column; the table lists all of them */
  const SPLIT_COLS = ['Split', 'Stage', 'Parents', 'Rows in', 'Rows out', 'Bytes out', 'Time', 'Instance', 'Offset'];
  const lineagePage = {
    title: (p) => 'Lineage · ' + p.job,
    mount(ctx) {
      const j = ctx.params.job, split = ctx.query.get('split') || '';
      return crumbs([`<a href="${jobHref(j)}">${esc(j)}</a>`, '<span>Lineage</span>']) + '<h1>Lineage</h1>' +
        '<form class="toolbar" data-submit="lineage"><label>Split id <input type="text" id="split-input" name="split" size="48" required ' +
        `value="${esc(split)}" autocomplete="off"></label><button type="submit" class="btn">Show lineage</button></form>` +
        '<div id="lin-summary"></div><div id="lin-graph" class="graph-wrap"></div>' +
        '<div id="lin-nodes"></div>' +
        '<section><h2>Splits</h2><div class="toolbar"><label>Stage <select id="split-stage" data-change="splitStage"><option value="">all stages</option></select></label></div>' +
        table('splits', SPLIT_COLS, 'Splits') + '<div class="pager" id="splits-pager"></div></section>';
    },
    init(ctx) {
      const j = ctx.params.job;
      ctx.st = { split: ctx.query.get('split') || '', cursors: [''], page: 0, stage: '', lin: null };
      ctx.actions.lineage = () => {
        const v = $('split-input').value.trim();
        if (v) location.hash = lineageHref(j, v);
      };
      ctx.actions.splitStage = (el) => { ctx.st.stage = el.value; ctx.st.cursors = ['']; ctx.st.page = 0; lineagePage.splits(ctx); };
      ctx.actions.splitsPage = (el) => {
        const step = Number(el.dataset.step);
        if (step > 0 && !ctx.st.next) return;
        if (step > 0) ctx.st.cursors[ctx.st.page + 1] = ctx.st.next;
        ctx.st.page = Math.max(0, ctx.st.page + step);
        lineagePage.splits(ctx);
      };
      api(`jobs/${enc(j)}/stages`).then((d) => {
        const sel = $('split-stage');
        if (ctx !== cur || !sel) return;
        sel.insertAdjacentHTML('beforeend', (d.items || []).map((s) => `<option value="${esc(s.id)}">${esc(s.id)}</option>`).join(''));
      }, () => {});
    },
    async refresh(ctx) {
      const j = ctx.params.job, st = ctx.st;
      if (st.split && !st.lin) {
        const base = `jobs/${enc(j)}/splits/${enc(st.split)}/lineage?depth=100&direction=`;
        const [up, down] = await Promise.all([api(base + 'up'), api(base + 'down')]);
        st.lin = { up, down };
        lineagePage.render(ctx);
      }
      await lineagePage.splits(ctx);
    },
    failed(ctx, e) {
      if (ctx.st.split && !ctx.st.lin) patch('lin-summary', `<p class="bad">${esc(e.message)}</p>`);
    },
    async splits(ctx) {
      const j = ctx.params.job, st = ctx.st;
      const cursor = st.cursors[st.page] || '';
      const d = await api(`jobs/${enc(j)}/splits?limit=${PAGE}` + (st.stage ? `&stage=${enc(st.stage)}` : '') + (cursor ? `&cursor=${enc(cursor)}` : ''));
      if (ctx !== cur) return;
      st.next = d.next || null;
      const items = d.items || [];
      patch('splits-body', items.length ? items.map((s) => `<tr data-split="${esc(s.split)}"><th scope="row"><a class="mono" href="${lineageHref(j, s.split)}">${esc(s.split)}</a></th>` +
        `<td>${esc(s.stage)}</td><td>${fmtNum((s.parents || []).length)}</td><td>${fmtNum(s.rows_in)}</td><td>${fmtNum(s.rows_out)}</td><td>${fmtBytes(s.bytes_out)}</td>` +
        `<td>${isNum(s.ms) ? esc(s.ms.toFixed(1) + ' ms') : dash}</td><td>${fmtNum(s.instance)}</td><td>${s.topic ? esc(`${s.topic}[${s.partition}]@${s.offset}`) : dash}</td></tr>`).join('')
        : emptyRow(SPLIT_COLS.length, 'No splits recorded yet.'));
      patch('splits-pager', `<button type="button" class="btn" data-click="splitsPage" data-step="-1" ${st.page ? '' : 'disabled'}>Previous</button>` +
        ` <span>Page ${st.page + 1}</span> <button type="button" class="btn" data-click="splitsPage" data-step="1" ${st.next ? '' : 'disabled'}>Next</button>`);
    },
    render(ctx) {
      const j = ctx.params.job, { up, down } = ctx.st.lin;
      const nodes = new Map(); /* split -> node with col */
      for (const n of up.nodes || []) nodes.set(n.split, Object.assign({ col: -n.depth }, n));
      for (const n of down.nodes || []) if (!nodes.has(n.split) || n.depth === 0) nodes.set(n.split, Object.assign({ col: n.depth }, n));
      const edges = [...(up.edges || []), ...(down.edges || [])].map((e) => [e.parent, e.child]);
      const hasParent = new Set(edges.map((e) => e[1])), hasChild = new Set(edges.map((e) => e[0]));
      const all = [...nodes.values()].sort((a, b) => a.col - b.col || String(a.stage).localeCompare(String(b.stage)) || String(a.split).localeCompare(String(b.split)));
      const minCol = Math.min(0, ...all.map((n) => n.col));
      const cols = [];
      let hidden = 0;
      for (const n of all) {
        const c = (cols[n.col - minCol] = cols[n.col - minCol] || []);
        n.role = n.depth === 0 ? 'root' : n.col < 0 && !hasParent.has(n.split) ? 'source' : n.col > 0 && !hasChild.has(n.split) ? 'sink' : '';
        if (c.length < LIN_MAX_COL) c.push({ key: n.split, n }); else hidden++;
      }
      const sources = all.filter((n) => n.role === 'source' || (n.role === 'root' && !hasParent.has(n.split)));
      patch('lin-summary', `<p>${all.length} split(s): ${(up.nodes || []).length - 1} upstream, ${(down.nodes || []).length - 1} downstream; ` +
        `sources reached: ${sources.map((n) => `<span class="mono">${esc(n.stage)}</span>`).join(', ') || 'none'}` +
        (up.truncated || down.truncated ? ' <span class="badge st-failed">truncated</span>' : '') + (hidden ? ` · ${hidden} more not drawn` : '') + '</p>');
      patch('lin-graph', graphSvg(cols.filter(Boolean), edges, (w, x, y, W, H) => {
        const n = w.n;
        return `<a href="${lineageHref(j, n.split)}" class="node lin ${n.role}" data-split="${esc(n.split)}" data-stage="${esc(n.stage)}" data-role="${n.role}" aria-label="split ${esc(n.split)} of stage ${esc(n.stage)}">` +
          `<title>${esc(n.split)}</title><rect class="box" x="${x}" y="${y}" width="${W}" height="${H}" rx="6"/>` +
          `<text x="${x + 8}" y="${y + 18}" class="name">${esc(short(n.stage, 26))}${n.role ? ' · ' + n.role : ''}</text>` +
          `<text x="${x + 8}" y="${y + 36}" class="sub mono">${esc(short(n.split, 30))}</text></a>`;
      }, 'Lineage graph', 230, 48));
      patch('lin-nodes', '<div class="table-wrap"><table class="grid" id="lin-table"><caption class="sr-only">Splits in the lineage</caption><thead>' +
        th(['Split', 'Stage', 'Role', 'Depth', 'Rows in', 'Rows out', 'Instance', 'Time']) + '</thead><tbody>' +
        all.map((n) => `<tr data-split="${esc(n.split)}" data-role="${n.role}"><th scope="row"><a class="mono" href="${lineageHref(j, n.split)}">${esc(n.split)}</a></th>` +
          `<td>${esc(n.stage)}</td><td>${n.role}</td><td>${n.col}</td><td>${fmtNum(n.rows_in)}</td><td>${fmtNum(n.rows_out)}</td><td>${fmtNum(n.instance)}</td><td>${fmtTime(n.ts)}</td></tr>`).join('') +
        '</tbody></table></div>');
    },
  };

  /* ---- exceptions ------------------------------------------------------------------------ */
  const EXC_COLS = ['Code', 'Count', 'First seen', 'Last seen', 'Message', 'Hint', 'Sample splits'];
  const exceptionsPage = {
    title: (p) => 'Exceptions · ' + p.job,
    mount(ctx) {
      const j = ctx.params.job;
      return crumbs([`<a href="${jobHref(j)}">${esc(j)}</a>`, '<span>Exceptions</span>']) + '<h1>Exceptions</h1><div id="exc-summary"></div>' +
        `<div class="table-wrap"><table class="grid" id="exceptions"><caption class="sr-only">Exceptions by stage</caption><thead>${th(EXC_COLS)}</thead><tbody id="exceptions-body"></tbody></table></div>`;
    },
    async refresh(ctx) {
      const j = ctx.params.job;
      const d = await api(`jobs/${enc(j)}/exceptions`);
      const items = d.items || [];
      const by = new Map();
      for (const e of items) { if (!by.has(e.stage)) by.set(e.stage, []); by.get(e.stage).push(e); }
      const total = items.reduce((a, e) => a + (e.count || 0), 0);
      patch('exc-summary', `<p>${fmtNum(total)} error(s) in ${items.length} group(s) across ${by.size} stage(s).</p>`);
      let html = '';
      for (const [stage, list] of by) {
        html += `<tr class="group"><th scope="rowgroup" colspan="${EXC_COLS.length}">Stage <a href="${stageHref(j, stage)}">${esc(stage)}</a> · ${fmtNum(list.reduce((a, e) => a + (e.count || 0), 0))}</th></tr>`;
        html += list.map((e) => `<tr data-fingerprint="${esc(e.fingerprint)}"><th scope="row">${esc(e.code)}</th><td>${fmtNum(e.count)}</td><td>${fmtTime(e.first_seen)}</td><td>${fmtTime(e.last_seen)}</td>` +
          `<td class="err">${esc(e.sample_message)}</td><td class="hint">${esc(e.hint || '')}</td><td>${(e.sample_splits || []).map((s) =>
            `<a class="mono" href="${lineageHref(j, s)}">${esc(short(s, 40))}</a>`).join('<br>')}</td></tr>`).join('');
      }
      patch('exceptions-body', html || emptyRow(EXC_COLS.length, 'No exceptions.'));
    },
  };

  /* ---- configuration --------------------------------------------------------------------- */
  const configPage = {
    title: () => 'Configuration',
    mount: () => '<h1>Configuration</h1><div id="cfg-auth" role="alert"></div><section><h2>This browser</h2><form class="settings" data-submit="saveToken">' +
      '<label>Theme <select id="cfg-theme" data-change="setTheme"><option value="system">as the system</option><option value="light">light</option><option value="dark">dark</option></select></label>' +
      '<label>Refresh every <select id="cfg-interval" data-change="setInterval"><option value="1000">1 s</option><option value="2000">2 s</option><option value="3000">3 s</option></select></label>' +
      '<label>API token <input type="password" id="cfg-token" autocomplete="off" spellcheck="false" aria-describedby="cfg-token-help"></label>' +
      '<button type="submit" class="btn" id="cfg-token-save">Save token</button><button type="button" class="btn" id="cfg-token-clear" data-click="clearToken">Forget token</button>' +
      '<p id="cfg-token-help" class="muted">The bearer token of a coordinator started with <code>auth.token</code>. It is kept for this browser tab only (session storage) and sent with every API call.</p></form></section>' +
      '<section><h2>Coordinator</h2><div id="cfg-server" class="facts"></div></section><section><h2>API</h2>' +
      table('endpoints', ['Method', 'Path', 'Summary'], 'API endpoints') + '</section>',
    init(ctx) {
      $('cfg-token').value = cfg.token;
      configPage.render(ctx);
      const why = ctx.query.get('auth');
      if (AUTH_MSG[why]) configPage.auth(why);
      const back = () => {
        const from = ctx.query.get('from') || '';
        if (from.startsWith('#/') && !from.startsWith('#/config')) location.hash = from;
        else tick(ctx);
      };
      ctx.actions.setTheme = (el) => { cfg.theme = el.value; store.setItem('nurion.theme', cfg.theme); applyTheme(); };
      ctx.actions.setInterval = (el) => { cfg.interval = Number(el.value); store.setItem('nurion.interval', el.value); };
      ctx.actions.saveToken = () => {
        cfg.token = $('cfg-token').value.trim();
        if (cfg.token) session.setItem('nurion.token', cfg.token); else session.removeItem('nurion.token');
        patch('cfg-auth', '');
        setStatus(cfg.token ? 'Token saved for this session' : 'No token set', false);
        back();
      };
      ctx.actions.clearToken = () => {
        cfg.token = '';
        $('cfg-token').value = '';
        session.removeItem('nurion.token');
        patch('cfg-auth', '');
        setStatus('Token forgotten', false);
        tick(ctx);
      };
    },
    auth(why) {
      patch('cfg-auth', `<p class="notice bad" data-auth="${esc(why)}">${esc(AUTH_MSG[why] || '')}</p>`);
      const el = $('cfg-token');
      if (el) el.focus();
    },
    render() {
      $('cfg-theme').value = cfg.theme;
      $('cfg-interval').value = String(cfg.interval);
    },
    async refresh() {
      const [health, ready, doc, access] = await Promise.all([api('/healthz').catch((e) => ({ error: e.message })),
        api('/readyz').catch((e) => ({ status: 'not ready', error: e.message })), api('/api/v1/openapi.json'),
        api('jobs?limit=1', { quiet: true }).then(() => (cfg.token ? 'token accepted' : 'open (no token needed)'),
          (e) => (e.status === 401 ? (cfg.token ? 'token refused' : 'token required') : e.message))]);
      const checks = (ready && ready.checks) || {};
      patch('cfg-server', pairs(`<dl><dt>Health</dt><dd>${badge(health.status || 'down')}</dd><dt>Readiness</dt><dd>${badge(ready.status)}</dd>` +
        Object.keys(checks).map((k) => `<dt>${esc(k)}</dt><dd>${esc(checks[k])}</dd>`).join('') +
        `<dt>API access</dt><dd id="cfg-access">${esc(access)}</dd>` +
        `<dt>API</dt><dd>${esc((doc.info || {}).title)} ${esc((doc.info || {}).version)}</dd><dt>Page served from</dt><dd>${esc(location.origin)}</dd></dl>`));
      const rows = [];
      for (const [p, ops] of Object.entries(doc.paths || {}))
        for (const [m, op] of Object.entries(ops))
          if (['get', 'post', 'put', 'delete', 'patch'].includes(m)) rows.push(`<tr><th scope="row">${esc(m.toUpperCase())}</th><td class="mono">${esc(p)}</td><td>${esc((op && op.summary) || '')}</td></tr>`);
      patch('endpoints-body', rows.join('') || emptyRow(3, 'The OpenAPI document lists no paths.'));
    },
    live: false,
  };

  const notFound = {
    title: () => 'Not found',
    mount: () => '<h1>Not found</h1><p>No page here. <a href="#/">Back to the jobs</a>.</p>',
    refresh: async () => {},
    live: false,
  };
})();
