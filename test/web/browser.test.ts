/**
 * The dashboard in real headless Chromium (Debian's, driven by playwright-core) against the server on
 * 127.0.0.1:0: browse the concerns, filter, open a series, log in, dismiss a concern, press rerun and see
 * the new run. The subject, the patch and the findings carry <script> and "><img onerror> payloads: no
 * dialog may fire, no img element may exist, no request for the payload's src may leave, and the payload
 * text must be visible as text.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ensureSystemPackages } from '../../src/util/system-packages.js';
import { openDb, type Db } from '../../src/store/db.js';
import { startServer, type RunningServer } from '../../src/web/server.js';
import { buildWorld, lockFinding, recordCheck, IMG, SCRIPT, TITLE, type World } from './world.js';

const TOKEN = 'browser-token-0123456789abcdef';

let db: Db;
let w: World;
let server: RunningServer;
let context: BrowserContext;
let page: Page;
let profile: string;
const dialogs: string[] = [];
const requests: string[] = [];
const consoleErrors: string[] = [];
const reruns: number[] = [];

beforeAll(async () => {
  await ensureSystemPackages(['chromium']);
  db = openDb(':memory:');
  w = await buildWorld(db);
  server = await startServer({
    db, token: TOKEN, csrfSecret: 'c'.repeat(32), port: 0,
    // Stands in for checkSeries: records a check (as a rerun) whose finding carries a payload too.
    rerun: async (id) => {
      reruns.push(id);
      recordCheck(db, id, [lockFinding('v2.1@example.org', 104), { ...lockFinding('v2.1@example.org', 106), rule: 'rerun-rule', message: `found on rerun ${IMG}` }], 'rerun');
    },
  });
  profile = mkdtempSync(join(tmpdir(), 'vfio-review-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
});

afterAll(async () => {
  await context?.close();
  await server?.close();
  db?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Nothing from the payloads ever ran or loaded. */
async function assertInert(): Promise<void> {
  expect(await page.locator('img').count()).toBe(0);
  expect(await page.locator('script').count()).toBe(0);
  expect(await page.evaluate(() => document.querySelectorAll('[onerror], [onload], [onclick]').length)).toBe(0);
  expect(dialogs).toEqual([]);
  expect(requests.filter((u) => new URL(u).pathname === '/x')).toEqual([]);
  // A payload that reached the DOM as markup would show up here as a CSP refusal.
  expect(consoleErrors.filter((e) => /Content Security Policy|Refused/i.test(e))).toEqual([]);
}

describe('dashboard in Chromium', () => {
  it('lists the open concerns and filters them with the GET form', async () => {
    await page.goto(`${server.url}/concerns`);
    await page.locator('tr.concern').first().waitFor();
    expect(await page.locator('tr.concern').count()).toBe(3);
    // The payload is visible as text in the series column.
    const cell = page.locator(`tr.concern:has(a[href="/concerns/${w.lockId}"]) td`).nth(6);
    expect(await cell.innerText()).toContain(`${SCRIPT} ${IMG}`);
    await assertInert();

    await page.selectOption('#f-rule', 'refcount');
    await Promise.all([page.waitForURL(/rule=refcount/), page.click('form.filters button[type=submit]')]);
    expect(await page.locator('tr.concern').count()).toBe(1);
    await page.fill('#f-path', 'drivers/vfio/');
    await page.selectOption('#f-rule', '');
    await Promise.all([page.waitForURL(/path=drivers%2Fvfio%2F/), page.click('form.filters button[type=submit]')]);
    expect(await page.locator('tr.concern').count()).toBe(2);
    await assertInert();
  });

  it('opens a series: the subject, the quoted patch line and the findings render as text', async () => {
    await page.goto(`${server.url}/concerns`);
    await page.click(`tr.concern:has(a[href="/concerns/${w.lockId}"]) td:nth-child(7) a`);
    await page.waitForURL(new RegExp(`/series/${w.v2}$`));
    expect(await page.locator('h1.subject').innerText()).toBe(`[PATCH v2 0/1] ${TITLE}`);
    expect(await page.title()).toContain(SCRIPT);
    const quote = page.locator('pre.quote').first();
    expect(await quote.locator('mark').innerText()).toContain(`down_write(&vdev->memory_lock); // ${SCRIPT}`);
    expect(await quote.innerText()).toContain(`mutex_lock(&vdev->igate); /* ${IMG} */`);
    expect(await page.locator('article.finding p.msg').first().innerText()).toContain(IMG);
    expect(await page.locator('pre.trace').first().innerText()).toContain(SCRIPT);
    expect(await page.locator('ol.timeline li').count()).toBe(2);
    // Not logged in: no rerun button, a login link instead.
    expect(await page.locator('#rerun').count()).toBe(0);
    await assertInert();
  });

  it('logs in with the token and dismisses a concern with a reason', async () => {
    await page.goto(`${server.url}/concerns/${w.uapiId}`);
    await page.click('main a[href^="/login"]');
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(new RegExp(`/concerns/${w.uapiId}$`)), page.click('#login')]);
    const cookies = await context.cookies(server.url);
    expect(cookies.find((c) => c.name === 'vr_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page.fill('#dismiss-by', 'Alex <alex@example.org>');
    await page.fill('#dismiss-why', `only read under igate ${IMG}`);
    await Promise.all([page.waitForURL(new RegExp(`/concerns/${w.uapiId}$`)), page.click('#dismiss')]);
    const notice = await page.locator('#dismissed').innerText();
    expect(notice).toContain('Dismissed by Alex <alex@example.org> (dashboard)');
    expect(notice).toContain(`only read under igate ${IMG}`);
    await page.goto(`${server.url}/concerns`);
    await page.locator('tr.concern').first().waitFor();
    expect(await page.locator(`a[href="/concerns/${w.uapiId}"]`).count()).toBe(0);
    expect(await page.locator('tr.concern').count()).toBe(2);
    await assertInert();
  });

  it('presses rerun and sees the new run', async () => {
    await page.goto(`${server.url}/series/${w.v2}`);
    const before = await page.locator('section.check').count();
    await Promise.all([page.waitForURL(/#check-\d+$/), page.click('#rerun')]);
    expect(reruns).toEqual([w.v2]);
    expect(await page.locator('section.check').count()).toBe(before + 1);
    const checkId = new URL(page.url()).hash.slice('#check-'.length);
    const newest = page.locator('section.check').first();
    expect(await newest.getAttribute('id')).toBe(`check-${checkId}`);
    expect(await newest.locator('summary').innerText()).toContain(`check #${checkId} · rerun`);
    expect(await newest.innerText()).toContain(`found on rerun ${IMG}`);
    await assertInert();
  });

  it('shows the health page', async () => {
    await page.goto(`${server.url}/health`);
    expect(await page.locator('#last-check').innerText()).toContain('rerun');
    await assertInert();
  });
});
