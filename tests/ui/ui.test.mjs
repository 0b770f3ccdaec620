// Browser tests of the coordinator's web UI: headless Chromium (Debian's) driven by playwright-core
// against a running `nurion coordinator` whose jobs run for real on the broker.
//
// Environment: NURION_UI_URL (required, e.g. http://127.0.0.1:8080), NURION_UI_TOKEN (the
// coordinator's auth.token, if any), NURION_UI_AUTH_URL and NURION_UI_AUTH_TOKEN (a second
// coordinator that requires that token, for the token tests), NURION_UI_SHOTS (folder for the page screenshots; default
// tests/ui/artifacts), NURION_UI_OUT (scratch folder for the jobs' file sinks; default a temp dir),
// CHROMIUM (default /usr/bin/chromium). scripts/test-ui sets them and starts everything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = process.env.NURION_UI_URL;
const TOKEN = process.env.NURION_UI_TOKEN || '';
const AUTH_URL = process.env.NURION_UI_AUTH_URL || '';
const AUTH_TOKEN = process.env.NURION_UI_AUTH_TOKEN || '';
const SHOTS = process.env.NURION_UI_SHOTS || path.join(here, 'artifacts');
const OUT = process.env.NURION_UI_OUT || mkdtempSync(path.join(tmpdir(), 'nurion-ui-'));
const RUN = `ui-${Date.now().toString(36)}`;
const OK_JOB = `${RUN}-ok`;
const LONG_JOB = `${RUN}-long`;
const JOB_WAIT = 120000;

if (!BASE) throw new Error('NURION_UI_URL is not set: run the tests through scripts/test-ui');
mkdirSync(SHOTS, { recursive: true });

let context, page;
const problems = []; // console errors, page errors and failed requests, with the page they hit

async function api(method, p, body) {
  const headers = { Accept: 'application/json' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

function spec(id, stages) {
  return { job_id: id, defaults: { max_attempts: 1 }, stages };
}

// generate 400 rows in 40 splits -> map (id 35 divides by zero: one poison row) -> file sink
const okSpec = spec(OK_JOB, [
  { id: 'src', operator: 'generate', partitions: 2, config: { rows: 400, split_rows: 10 } },
  { id: 'dbl', operator: 'map', upstream: ['src'], partitions: 2, config: { columns: { y: '100 / (id - 35)' } } },
  { id: 'out', operator: 'file_sink', upstream: ['dbl'], partitions: 2, config: { path: path.join(OUT, 'ok'), format: 'jsonl' } },
]);
// long enough to be cancelled while it runs; the filter keeps the sink's output empty
const longSpec = spec(LONG_JOB, [
  { id: 'src', operator: 'generate', partitions: 4, config: { rows: 200000000, split_rows: 5000 } },
  { id: 'dbl', operator: 'map', upstream: ['src'], partitions: 4, config: { columns: { y: 'id * 2' } } },
  { id: 'keep', operator: 'filter', upstream: ['dbl'], partitions: 4, config: { where: 'id < 0' } },
  { id: 'out', operator: 'file_sink', upstream: ['keep'], partitions: 4, config: { path: path.join(OUT, 'long'), format: 'jsonl' } },
]);

async function open(hash) {
  await page.goto(`${BASE}/#${hash}`);
  await page.waitForSelector('#status:not(:empty)', { timeout: 15000 });
}
async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  // a new, empty profile each run; the flags keep Chromium off the (closed) network
  context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'nurion-chromium-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 860 },
    colorScheme: 'light',
  });
  if (TOKEN) await context.addInitScript((t) => window.sessionStorage.setItem('nurion.token', t), TOKEN);
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error on ${page.url()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`uncaught exception on ${page.url()}: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed on ${page.url()}: ${r.url()} ${r.failure()?.errorText}`));
  const r = await api('POST', '/api/v1/jobs', okSpec);
  assert.equal(r.status, 201, JSON.stringify(r.json));
});

after(async () => {
  await context?.close();
  for (const id of [OK_JOB, LONG_JOB]) {
    const r = await api('GET', `/api/v1/jobs/${id}`);
    if (r.status !== 200) continue;
    if (r.json.state === 'running' || r.json.state === 'submitted') await api('POST', `/api/v1/jobs/${id}/cancel`);
    await api('DELETE', `/api/v1/jobs/${id}?topics=true`);
  }
});

test('the portal lists the job, with counts and search', async () => {
  await open('/');
  const row = page.locator(`#jobs-body tr[data-job="${OK_JOB}"]`);
  await row.waitFor({ timeout: 15000 });
  const all = Number(await page.locator('[data-group="all"] .count').textContent());
  assert.ok(all >= 1, `the "All" tab counts ${all} jobs`);
  await page.fill('#job-search', OK_JOB);
  assert.equal(await page.locator('#jobs-body tr[data-job]').count(), 1, 'search keeps exactly the job');
  await page.fill('#job-search', 'no-job-has-this-name');
  await page.locator('#jobs-body tr[data-job]').first().waitFor({ state: 'detached' });
  await page.fill('#job-search', '');
});

test('the job page draws every stage and follows the job to succeeded at 100%', async () => {
  await open(`/jobs/${OK_JOB}`);
  for (const s of okSpec.stages) await page.locator(`#dag [data-stage="${s.id}"]`).waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#dag .node').count(), okSpec.stages.length);
  assert.equal(await page.locator('#dag .edge').count(), 2, 'src -> dbl -> out');
  await page.locator('#job-state .badge', { hasText: 'succeeded' }).waitFor({ timeout: JOB_WAIT });
  for (const s of okSpec.stages) {
    const row = page.locator(`#stages-body tr[data-stage="${s.id}"]`);
    await row.locator('.pct', { hasText: '100%' }).waitFor({ timeout: 15000 });
    assert.equal(await row.locator('.badge').textContent(), 'succeeded');
    assert.match(await page.locator(`#dag [data-stage="${s.id}"]`).getAttribute('class'), /st-succeeded/);
  }
  assert.ok(await page.locator('#cancel-btn').isHidden(), 'no cancel button on a finished job');
  await page.locator('#topics td.cmd code', { hasText: 'kcat -b' }).first().waitFor({ timeout: 15000 });
  // the topics table reads the offsets again once the job ended: the map stage's output holds its
  // 39 data splits (one split was dead-lettered), plus end-of-stream and commit markers
  const dblOut = page.locator(`#topics tr[data-topic="nurion.${OK_JOB}.dbl"] td.records`);
  await page.waitForFunction((sel) => {
    const el = document.querySelector(sel);
    return el && Number(el.firstChild.textContent.replace(/,/g, '')) >= 39;
  }, `#topics tr[data-topic="nurion.${OK_JOB}.dbl"] td.records`, { timeout: 15000 });
  assert.ok(Number((await dblOut.evaluate((el) => el.firstChild.textContent)).replace(/,/g, '')) >= 39);
  await page.locator(`#topics tr[data-topic="nurion.${OK_JOB}.out"] .note`, { hasText: 'sink' }).waitFor();
  await page.locator('#spec').evaluate((el) => el.closest('details').setAttribute('open', ''));
  await shot('job');
});

test('the stage and instance pages show instances, partitions and process figures', async () => {
  await open(`/jobs/${OK_JOB}/stages/dbl`);
  await page.locator('#instances-body a').first().waitFor({ timeout: 15000 });
  await page.locator('#partitions thead th', { hasText: 'Committed' }).waitFor();
  // the charts come from the stored samples: a short job may have left only a few, or none
  await page.locator('#chart-rps svg, #chart-rps p').first().waitFor({ timeout: 15000 });
  await page.locator('#instances-body a').first().click();
  await page.waitForURL(/#\/jobs\/.*\/instances\/dbl\/\d+$/);
  await page.locator('#inst-facts dt', { hasText: 'PID' }).waitFor({ timeout: 15000 });
  const pid = await page.locator('#inst-facts dt:text-is("PID") + dd').textContent();
  assert.match(pid, /^\d+$/, `a pid, got "${pid}"`);
  await page.locator('#inst-errors-body .err', { hasText: 'division by zero' }).first().waitFor({ timeout: 15000 });
  // an instance that hit the poison rows lists them itself, each split linked to its lineage
  const insts = await api('GET', `/api/v1/jobs/${OK_JOB}/instances`);
  const hit = insts.json.items.find((i) => i.stage === 'dbl' && i.recent_errors.length > 0);
  assert.ok(hit, 'an instance of dbl has recent errors');
  await open(`/jobs/${OK_JOB}/instances/dbl/${hit.instance}`);
  await page.locator('#inst-own-errors-body .err', { hasText: 'division by zero' }).first().waitFor({ timeout: 15000 });
  await page.locator('#inst-own-errors-body a', { hasText: hit.recent_errors[0].split }).first().waitFor();
});

test('the lineage page walks a sink split back to its source', async () => {
  const splits = await api('GET', `/api/v1/jobs/${OK_JOB}/splits?stage=out&limit=5`);
  assert.equal(splits.status, 200);
  assert.ok(splits.json.items.length > 0, 'the sink recorded splits');
  await open(`/jobs/${OK_JOB}/lineage`);
  await page.selectOption('#split-stage', 'out');
  const first = page.locator('#splits-body tr[data-split] a').first();
  await first.waitFor({ timeout: 15000 });
  const split = await first.textContent();
  await page.fill('#split-input', split);
  await page.click('form[data-submit="lineage"] button[type="submit"]');
  await page.waitForURL(/lineage\?split=/);
  // the walk up ends at a plan split consumed by the source stage; the root is the sink split
  await page.locator('#lin-graph [data-role="root"][data-stage="out"]').waitFor({ timeout: 15000 });
  await page.locator('#lin-graph [data-role="source"][data-stage="src"]').waitFor({ timeout: 15000 });
  assert.ok(await page.locator('#lin-graph .edge').count() >= 2, 'edges out -> dbl -> src drawn');
  assert.match(await page.locator('#lin-summary').textContent(), /sources reached: src/);
  await shot('lineage');
  // clicking the source node re-roots the walk there, and the walk down reaches the sink again
  await page.locator('#lin-graph [data-role="source"]').first().click();
  await page.locator('#lin-graph [data-role="root"][data-stage="src"]').waitFor({ timeout: 15000 });
  await page.locator('#lin-graph [data-role="sink"][data-stage="out"]').first().waitFor({ timeout: 15000 });
});

test('a poison row shows on the exceptions page with its hint', async () => {
  const ex = await api('GET', `/api/v1/jobs/${OK_JOB}/exceptions`);
  assert.equal(ex.status, 200);
  assert.ok(ex.json.items.length >= 1, 'the store grouped the error');
  const e = ex.json.items[0];
  await open(`/jobs/${OK_JOB}/exceptions`);
  const row = page.locator(`#exceptions-body tr[data-fingerprint="${e.fingerprint}"]`);
  await row.waitFor({ timeout: 15000 });
  assert.match(await row.locator('.err').textContent(), /division by zero/);
  if (e.hint) assert.equal(await row.locator('.hint').textContent(), e.hint);
  assert.ok(await row.locator('.hint').textContent(), 'a hint is shown');
  assert.equal(await page.locator('#exceptions-body tr.group', { hasText: 'dbl' }).count(), 1);
  const sample = row.locator('a[href*="lineage?split="]').first();
  await sample.waitFor();
  await shot('exceptions');
  await sample.click();
  await page.locator('#lin-graph [data-role="root"]').waitFor({ timeout: 15000 });
});

test('the configuration page reads the coordinator, and the dark theme applies', async () => {
  await open('/config');
  await page.locator('#endpoints-body tr').first().waitFor({ timeout: 15000 });
  assert.match(await page.locator('#cfg-server').textContent(), /ok/);
  await shot('config');
  await page.click('#theme-btn');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await open('/');
  await page.locator(`#jobs-body tr[data-job="${OK_JOB}"]`).waitFor({ timeout: 15000 });
  await shot('portal-dark');
  await page.click('#theme-btn');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
});

test('the configuration page takes the token a coordinator requires', { skip: !AUTH_URL && 'NURION_UI_AUTH_URL is not set' }, async () => {
  // a tab of its own: the token lives in the tab's session storage
  const tab = await context.newPage();
  const seen = [];
  tab.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) seen.push(`console error: ${m.text()}`); });
  tab.on('pageerror', (e) => seen.push(`uncaught exception: ${e.message}`));
  try {
    await tab.goto(`${AUTH_URL}/#/`);
    // no token: the first API call answers 401 and the page sends the user to the configuration
    await tab.waitForURL(/#\/config\?auth=required/, { timeout: 15000 });
    await tab.locator('#cfg-auth [data-auth="required"]').waitFor();
    assert.match(await tab.locator('#cfg-auth').textContent(), /requires an API token/);
    assert.equal(await tab.evaluate(() => document.activeElement && document.activeElement.id), 'cfg-token');
    await tab.locator('#cfg-access', { hasText: 'token required' }).waitFor({ timeout: 15000 });
    await tab.screenshot({ path: path.join(SHOTS, 'config-token.png'), fullPage: true });
    // a wrong token is refused, and the page says so
    await tab.fill('#cfg-token', 'not-the-token');
    await tab.click('#cfg-token-save');
    await tab.locator('#cfg-auth [data-auth="refused"]').waitFor({ timeout: 15000 });
    // the right one: back to the jobs page, whose API calls now carry it
    await tab.fill('#cfg-token', AUTH_TOKEN);
    await tab.click('#cfg-token-save');
    await tab.waitForURL(/#\/$/, { timeout: 15000 });
    await tab.locator('#jobs-body tr').first().waitFor({ timeout: 15000 });
    await tab.locator('#status', { hasText: 'Updated' }).waitFor({ timeout: 15000 });
    assert.equal(await tab.locator('#status.bad').count(), 0);
    assert.equal(await tab.evaluate(() => window.sessionStorage.getItem('nurion.token')), AUTH_TOKEN);
    assert.equal(await tab.evaluate(() => window.localStorage.getItem('nurion.token')), null, 'the token is not kept beyond the session');
    await tab.goto(`${AUTH_URL}/#/config`);
    await tab.locator('#cfg-access', { hasText: 'token accepted' }).waitFor({ timeout: 15000 });
    // forgetting it brings the 401 back
    await tab.click('#cfg-token-clear');
    await tab.locator('#cfg-access', { hasText: 'token required' }).waitFor({ timeout: 15000 });
    assert.equal(await tab.evaluate(() => window.sessionStorage.getItem('nurion.token')), null);
    assert.deepEqual(seen, []);
  } finally {
    await tab.close();
  }
});

test('cancelling a running job from the UI works', async () => {
  const r = await api('POST', '/api/v1/jobs', longSpec);
  assert.equal(r.status, 201, JSON.stringify(r.json));
  await open(`/jobs/${LONG_JOB}`);
  await page.locator('#job-state .badge', { hasText: 'running' }).waitFor({ timeout: JOB_WAIT });
  await page.locator('#stages-body tr[data-stage="dbl"] .badge', { hasText: 'running' }).waitFor({ timeout: JOB_WAIT });
  // once the store holds a few metric samples of the stage, a newly opened stage page draws
  // them at once: its charts show history from before the page opened
  const deadline = Date.now() + JOB_WAIT;
  for (;;) {
    const m = await api('GET', `/api/v1/jobs/${LONG_JOB}/stages/dbl/metrics?since=-900&step=10`);
    assert.equal(m.status, 200, JSON.stringify(m.json));
    if (m.json.points.length >= 3) break;
    assert.ok(Date.now() < deadline, 'the stage reports no metrics');
    await new Promise((r) => setTimeout(r, 1000));
  }
  await open(`/jobs/${LONG_JOB}/stages/dbl`);
  await page.locator('#chart-rps polyline.c-in').waitFor({ state: 'attached', timeout: 5000 });
  await page.locator('#chart-lag polyline.c-lag').waitFor({ state: 'attached', timeout: 5000 });
  await page.locator('#chart-inst polyline.c-inst').waitFor({ state: 'attached', timeout: 5000 });
  await page.locator('#partitions-body tr').first().waitFor();
  await page.waitForTimeout(3000);
  await shot('stage');
  // a running instance reports its process figures
  await page.locator('#instances-body a').first().click();
  await page.locator('#inst-facts dt:text-is("RSS") + dd', { hasText: 'MiB' }).waitFor({ timeout: 30000 });
  await shot('instance');
  await open(`/jobs/${LONG_JOB}`);
  await page.locator('#dag [data-stage="keep"]').waitFor({ timeout: 15000 });
  await page.waitForTimeout(2500);
  await shot('job-running');
  const scrolled = await page.evaluate(() => { window.scrollTo(0, 200); return window.scrollY; });
  await page.waitForTimeout(2500); // at least one live update
  assert.equal(await page.evaluate(() => window.scrollY), scrolled, 'live updates keep the scroll position');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.click('#cancel-btn');
  await page.locator('#cancel-dialog[open]').waitFor();
  await shot('cancel-dialog');
  await page.click('#cancel-confirm');
  await page.locator('#job-state .badge', { hasText: 'cancelled' }).waitFor({ timeout: 60000 });
  const after = await api('GET', `/api/v1/jobs/${LONG_JOB}`);
  assert.equal(after.json.state, 'cancelled');
  assert.ok(await page.locator('#cancel-btn').isHidden());
});

test('the portal counts and no page logged a console error', async () => {
  await open('/');
  await page.click('[data-group="cancelled"]');
  await page.locator(`#jobs-body tr[data-job="${LONG_JOB}"]`).waitFor({ timeout: 15000 });
  await page.click('[data-group="all"]');
  await page.locator(`#jobs-body tr[data-job="${OK_JOB}"]`).waitFor({ timeout: 15000 });
  await shot('portal');
  await open('/jobs/none/nothing');
  await page.locator('h1', { hasText: 'Not found' }).waitFor();
  assert.deepEqual(problems, []);
});
