// Browser tests of the easypos console (issue 7): a real `easypos up` on a fresh database and
// free ports, driven through Debian's Chromium with playwright-core (no browser download).
// Each role signs in and walks its portal; the language switches; another merchant's
// transaction is refused by URL; the browser reports no errors (a CSP violation is one).
// Screenshots of failures go to screenshots/.
//
//   EASYPOS_BIN=target/debug/easypos npm test      (run.sh builds the binary and does this)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const binary = process.env.EASYPOS_BIN ?? join(here, '../../../target/debug/easypos');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const password = 'easypos-demo-2026';
const shots = join(here, 'screenshots');
/** How long `easypos up` may take to print its banner. */
const START_TIMEOUT_MS = 60_000;

let dir, server, web, iso, browser;

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['up'], {
      cwd: dir,
      env: {
        ...process.env,
        EASYPOS_DATA_DIR: join(dir, 'data'),
        EASYPOS_HTTP_LISTEN: '127.0.0.1:0',
        EASYPOS_ISO8583_LISTEN: '127.0.0.1:0',
        EASYPOS_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => reject(new Error('easypos up printed no banner in time')), START_TIMEOUT_MS);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const webLine = out.match(/^\s*web\s+(http:\/\/\S+?)\/?$/m);
      const isoLine = out.match(/^\s*ISO 8583\s+(\S+)/m);
      if (webLine && isoLine && out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve({ child, web: webLine[1], iso: isoLine[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`easypos up exited with ${code}: ${out}`)));
  });
}

/** Terminals set up in this run (one directory each). */
const initialised = new Set();

/** A sale through the real terminal path (`easypos terminal`), so the journal has one. */
function sale(terminalId, cardId, amount) {
  const work = join(dir, `terminal-${terminalId}`);
  const fresh = !initialised.has(terminalId);
  mkdirSync(work, { recursive: true });
  // A declined sale exits 1 with its JSON on standard output.
  const run = (...args) => {
    try {
      return execFileSync(binary, args, { cwd: work, encoding: 'utf8' });
    } catch (error) {
      if (error.status === 1 && error.stdout) return error.stdout;
      throw error;
    }
  };
  if (fresh) {
    run('terminal', 'init', '--demo', terminalId, '--host', iso);
    run('terminal', 'sign-on');
    initialised.add(terminalId);
  }
  if (!existsSync(join(work, `${cardId}.json`))) run('cards', 'issue', cardId);
  const method = cardId.endsWith('-C') ? 'credit' : 'debit';
  const answer = JSON.parse(run('terminal', 'pay', '--json', '--method', method, '--card', `${cardId}.json`, '--pin', '123456', '--amount', amount));
  return answer;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'easypos-browser-'));
  mkdirSync(shots, { recursive: true });
  ({ child: server, web, iso } = await startServer());
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  if (server) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.on('exit', resolve));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** RFC 4648 base32 (no padding) to bytes. */
function fromBase32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const char of text) {
    value = (value << 5) | alphabet.indexOf(char);
    bits += 5;
    if (bits >= 8) { bits -= 8; out.push((value >> bits) & 0xff); }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s) of time step `step`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac('sha1', secret).update(counter).digest();
  const offset = digest[19] & 0x0f;
  const binary = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

/** Each second-factor user's key (seen at enrolment) and the last time step used. */
const authenticators = new Map();

/** Answers the second-factor page like an authenticator app: enrols on first sight, and never
 * uses a time step twice (a code is good once), waiting for the next one when needed. */
async function secondFactor(page, user) {
  const shown = page.locator('#totp-secret');
  if (await shown.count() === 1) {
    assert.equal(await page.locator('.qr svg').count(), 1, 'the enrolment shows a QR code');
    authenticators.set(user, { secret: fromBase32((await shown.textContent()).trim()), last: 0 });
  }
  const app = authenticators.get(user);
  assert.ok(app, `${user} has an authenticator`);
  let step = Math.floor(Date.now() / 30_000);
  if (step <= app.last) {
    await new Promise((resolve) => setTimeout(resolve, (app.last + 1) * 30_000 - Date.now() + 200));
    step = app.last + 1;
  }
  app.last = step;
  await page.fill('input[name=code]', totp(app.secret, step));
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/** A signed-in page for `user`, in `locale`, collecting the browser's errors. */
async function signIn(user, locale = 'en-US') {
  const context = await browser.newContext({ locale });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (message) => { if (message.type() === 'error') page.errors.push(message.text()); });
  page.on('pageerror', (error) => page.errors.push(String(error)));
  await page.goto(`${web}/console/login`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  if (page.url().endsWith('/console/mfa')) {
    await secondFactor(page, user);
  }
  assert.doesNotMatch(page.url(), /\/console\/(login|mfa)/, `${user} is signed in`);
  return page;
}

/** Runs `body` with a page; on failure saves a screenshot named after the test. */
async function withPage(name, user, locale, body) {
  const page = await signIn(user, locale);
  try {
    await body(page);
    assert.deepEqual(page.errors, [], `${name}: the browser reported errors`);
  } catch (error) {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true }).catch(() => {});
    throw error;
  } finally {
    await page.context().close();
  }
}

const portals = {
  'shanghai.admin': ['Dashboard', 'Transactions', 'Terminals', 'Staff', 'Cases', 'Emergency', 'API keys'],
  'shanghai.cashier': ['Dashboard', 'Transactions', 'Terminals'],
  'cardholder1': ['Cards', 'Transactions'],
  'operator': ['Merchants', 'Terminals', 'Transactions', 'Message journal', 'Cases', 'Emergency', 'System health', 'API keys'],
  'bank': ['Cards', 'Transactions', 'API keys'],
  'partner': ['Merchants', 'Terminals', 'Transactions', 'API keys'],
};

for (const [user, items] of Object.entries(portals)) {
  test(`${user} signs in and walks the portal`, async () => {
    await withPage(`portal-${user}`, user, 'en-US', async (page) => {
      const labels = await page.locator('header nav a').allTextContents();
      assert.deepEqual(labels.map((label) => label.trim()), items);
      for (const label of items) {
        await Promise.all([page.waitForNavigation(), page.click(`header nav a:text-is("${label}")`)]);
        assert.equal(await page.locator('h1').count(), 1, `${user}: ${label} has a heading`);
        assert.equal(await page.getAttribute('header nav a[aria-current=page]', 'href') !== null, true);
      }
    });
  });
}

test('the language follows the browser and switches on request', async () => {
  await withPage('language', 'cardholder1', 'zh-CN', async (page) => {
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.match(await page.locator('h1').textContent(), /银行卡/);
    await Promise.all([page.waitForNavigation(), page.click('a.lang')]);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.match(await page.locator('h1').textContent(), /Cards/);
  });
});

test('transactions are searched in place and another merchant\'s is refused by URL', async () => {
  const shanghai = sale('10000001', 'card-CH001-D', '12.50');
  const beijing = sale('20000001', 'card-CH002-C', '48.00');
  assert.equal(shanghai.approved, true, JSON.stringify(shanghai));
  assert.equal(beijing.approved, true, JSON.stringify(beijing));
  await withPage('transactions', 'shanghai.manager', 'en-US', async (page) => {
    await page.goto(`${web}/console/transactions`);
    const rows = page.locator('#results tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /621234\*{6}0000/);
    // htmx: the search swaps the results without a page load.
    await page.selectOption('select[name=status]', 'declined');
    await page.click('form.search button[type=submit]');
    await page.waitForSelector('#results p.empty');
    assert.match(page.url(), /status=declined/);
    // The detail of the merchant's own sale opens; the Beijing sale's does not.
    await page.goto(`${web}/console/transactions`);
    await Promise.all([page.waitForNavigation(), rows.first().locator('a').click()]);
    assert.match(await page.locator('dl.receipt').textContent(), /Lujiazui Coffee/);
    const ownId = page.url().split('/').pop();
    const beijingId = String(Number(ownId) + 2);
    const refused = await page.goto(`${web}/console/transactions/${beijingId}`);
    assert.equal(refused.status(), 404);
    page.errors = page.errors.filter((text) => !text.includes('404'));
  });
});

test('a signed-out visitor is sent to the login page, and sign-out ends the session', async () => {
  await withPage('sign-out', 'partner', 'en-US', async (page) => {
    await Promise.all([page.waitForNavigation(), page.click('header form button')]);
    assert.match(page.url(), /\/console\/login$/);
    await page.goto(`${web}/console/merchants`);
    assert.match(page.url(), /\/console\/login$/);
  });
});

test('a merchant admin signs in again with a new code, not the one used before', async () => {
  // shanghai.admin enrolled while walking the portal; this sign-in needs a later code.
  await withPage('second-factor', 'shanghai.admin', 'en-US', async (page) => {
    assert.equal(await page.locator('h1').textContent(), 'Dashboard');
    assert.ok(authenticators.get('shanghai.admin').last > 0);
  });
});

test('a merchant admin works a risk case to a terminal block and freezes refunds in an emergency', async () => {
  // 6,000.00 on a card the engine has not seen today: the demo rule `new-card-high-amount`
  // puts it up for review, approved, and a case opens in the background.
  const flagged = sale('10000001', 'card-CH001-C', '6000.00');
  assert.equal(flagged.approved, true, JSON.stringify(flagged));
  await withPage('case-queue', 'shanghai.admin', 'en-US', async (page) => {
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Cases")')]);
    const link = page.locator('#cases tbody tr a').first();
    for (let tries = 0; (await link.count()) === 0 && tries < 20; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await page.reload();
    }
    assert.match(await page.locator('#cases tbody tr').first().textContent(), /new-card-high-amount\(review,30\)/);
    assert.match(await page.locator('#cases tbody tr').first().textContent(), /625678\*{6}\d{4}/);
    await Promise.all([page.waitForNavigation(), link.click()]);
    assert.equal(await page.locator('option[value=block_card]').count(), 0, 'a merchant does not block cards');
    await page.fill('input[name=text]', 'not a regular of ours');
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/comments"] button')]);
    await page.fill('input[name=assignee]', 'shanghai.manager');
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/assign"] button')]);
    assert.equal((await page.locator('#case-assignee').textContent()).trim(), 'shanghai.manager');
    await page.selectOption('select[name=outcome]', 'block_terminal');
    await page.fill('input[name=reason]', 'card testing on this terminal');
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/resolve"] button')]);
    assert.equal((await page.locator('#case-status').textContent()).trim(), 'resolved');
    assert.equal((await page.locator('#case-outcome').textContent()).trim(), 'block_terminal');
    assert.match(await page.locator('#case-comments').textContent(), /not a regular of ours/);
    // The emergency page shows the block, and freezes the merchant's refunds in one step.
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Emergency")')]);
    assert.match(await page.locator('#freezes').textContent(), /terminal:10000001/);
    await page.selectOption('select[name=target]', 'refunds:898310058120001');
    await page.fill('input[name=reason]', 'refund spike on the night shift');
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/freeze"] button')]);
    const refunds = page.locator('#freezes tr', { hasText: 'refunds:898310058120001' });
    assert.match(await refunds.textContent(), /refund spike on the night shift/);
    await Promise.all([page.waitForNavigation(), refunds.locator('button').click()]);
    assert.equal(await page.locator('#freezes tr', { hasText: 'refunds:898310058120001' }).count(), 0);
  });
  // The block is a freeze: the terminal's next sale is declined 58.
  const blocked = sale('10000001', 'card-CH001-D', '1.00');
  assert.equal(blocked.approved, false, JSON.stringify(blocked));
  assert.equal(blocked.response_code, '58');
});
