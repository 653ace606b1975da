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
import { copyFileSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, createHmac } from 'node:crypto';
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
  // A terminal or card used before keeps its files (and its trace number, its card's ATC).
  if (!existsSync(join(work, 'terminal.toml'))) run('terminal', 'init', '--demo', terminalId, '--host', iso);
  if (fresh) {
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

const guideScreens = join(here, '../../../docs/guides/screens');

/**
 * With EASYPOS_UPDATE_SCREENSHOTS=1, saves what `page` shows (1000×700) as
 * docs/guides/screens/NAME.png for the guides; otherwise does nothing, so a test run never
 * rewrites tracked files (crates/console/tests/guides.rs checks the guides name existing files).
 */
async function guideShot(page, name) {
  if (process.env.EASYPOS_UPDATE_SCREENSHOTS !== '1') return;
  await page.setViewportSize({ width: 1000, height: 700 });
  await page.screenshot({ path: join(guideScreens, `${name}.png`) });
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
  'shanghai.admin': ['Dashboard', 'Transactions', 'QR payments', 'Terminals', 'Staff', 'Cases', 'Emergency', 'Incidents', 'API keys', 'Terminal management', 'Refunds', 'Settlement', 'Disputes', 'Procedures', 'Audit log'],
  'shanghai.cashier': ['Dashboard', 'Transactions', 'QR payments', 'Terminals', 'Refunds', 'Procedures'],
  'cardholder1': ['Cards', 'Transactions', 'Wallet'],
  'operator': ['Merchants', 'Terminals', 'Transactions', 'Message journal', 'Cases', 'Emergency', 'Incidents', 'System health', 'API keys', 'Applications', 'Terminal management', 'Risk rules', 'Settlement', 'Audit log'],
  'bank': ['Cards', 'Transactions', 'API keys', 'Disputes'],
  'partner': ['Merchants', 'Terminals', 'Transactions', 'API keys', 'Applications', 'Incidents'],
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
      if (user === 'shanghai.admin') {
        await page.goto(`${web}/console/dashboard`);
        await guideShot(page, 'console-dashboard');
        await page.goto(`${web}/console/refunds`);
        await guideShot(page, 'console-refunds');
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

test('anyone verifies a real receipt at /verify, and an altered one is refused', async () => {
  const answer = sale('10000002', 'card-CH003-D', '8.80');
  assert.equal(answer.approved, true, JSON.stringify(answer));
  const payload = answer.receipt.verification;
  assert.match(payload, /^EPR1\|/);
  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  try {
    // No sign-in: the receipt's holder pastes its QR code's text.
    await page.goto(`${web}/verify`);
    await page.fill('textarea[name=receipt]', payload);
    await Promise.all([page.waitForNavigation(), page.click('form.verify button[type=submit]')]);
    assert.equal(await page.getAttribute('.verdict', 'data-verdict'), 'genuine');
    const details = await page.locator('dl.receipt').textContent();
    assert.match(details, /CNY 8\.80/);
    assert.ok(details.includes(answer.receipt.rrn), details);
    await guideShot(page, 'console-verify');
    // One digit of the amount changed: refused, with the reason.
    await page.goto(`${web}/verify`);
    await page.fill('textarea[name=receipt]', payload.replace('|880|', '|980|'));
    const [refused] = await Promise.all([page.waitForNavigation(), page.click('form.verify button[type=submit]')]);
    assert.equal(refused.status(), 422);
    assert.equal(await page.getAttribute('.verdict', 'data-verdict'), 'rejected');
    assert.match(await page.locator('.verdict').textContent(), /NOT genuine.*altered or forged/);
    assert.equal(await page.locator('dl.receipt').count(), 0);
    assert.deepEqual(errors, []);
  } catch (error) {
    await page.screenshot({ path: join(shots, 'verify.png'), fullPage: true }).catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
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

test('a cardholder who does not recognise a charge reports fraud and downloads the evidence pack', async () => {
  const answer = sale('10000001', 'card-CH001-C', '66.00');
  assert.equal(answer.approved, true, JSON.stringify(answer));
  await withPage('fraud-report', 'cardholder1', 'en-US', async (page) => {
    await page.goto(`${web}/console/transactions`);
    const row = page.locator('#results tbody tr', { hasText: '66.00' });
    await Promise.all([page.waitForNavigation(), row.locator('a').first().click()]);
    assert.match(await page.locator('h2', { hasText: "don't recognise" }).textContent(), /recognise this charge/);
    await page.fill('form.fraud textarea[name=description]', 'I was at home; my card never left my wallet.');
    await Promise.all([page.waitForNavigation(), page.click('form.fraud button[type=submit]')]);
    assert.match(page.url(), /\/console\/fraud-reports\/fr_[0-9a-f]{16}$/);
    const seal = (await page.locator('#pack-sha256').textContent()).trim();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-pack')]);
    const text = readFileSync(await download.path(), 'utf8');
    // The seal is the pack's SHA-256, and every file matches its line in the manifest.
    assert.equal(createHash('sha256').update(text).digest('hex'), seal);
    const pack = JSON.parse(text);
    for (const entry of pack.manifest) {
      // The PDF is in the pack as base64; its hash is of its bytes.
      const bytes = entry.encoding === 'base64' ? Buffer.from(pack.files[entry.name], 'base64') : pack.files[entry.name];
      assert.equal(createHash('sha256').update(bytes).digest('hex'), entry.sha256, entry.name);
    }
    assert.equal(JSON.parse(pack.files['transaction.json']).amount.major, '66.00');
    // The PDF download is the pack's evidence.pdf, and the SHA256SUMS manifest names it.
    const [pdfDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download-pdf')]);
    const pdf = readFileSync(await pdfDownload.path());
    assert.equal(pdf.subarray(0, 8).toString('latin1'), '%PDF-1.4');
    const pdfSha = createHash('sha256').update(pdf).digest('hex');
    assert.equal(pack.manifest.find((entry) => entry.name === 'evidence.pdf').sha256, pdfSha);
    const [sumsDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download-manifest')]);
    const sums = readFileSync(await sumsDownload.path(), 'utf8');
    assert.match(sums, new RegExp(`^${pdfSha}  evidence-fr_[0-9a-f]{16}\\.pdf$`, 'm'));
    assert.match(sums, new RegExp(`^${seal}  evidence-fr_[0-9a-f]{16}\\.json$`, 'm'));
  });
  // The card is frozen: its next sale is declined 62.
  let after;
  try {
    after = sale('10000001', 'card-CH001-C', '1.00');
  } catch (error) {
    // A decline exits 1, with its answer on standard output.
    after = JSON.parse(error.stdout);
  }
  assert.equal(after.response_code, '62', JSON.stringify(after));
});

// A cardholder's fraud report opens a dispute; the card's issuer (the debit bank) charges it
// back in the console, and the merchant answers with the transaction certificate attached.
test('the issuer charges back a reported charge and the merchant answers with the certificate', async () => {
  const answer = sale('10000001', 'card-CH002-D', '77.00');
  assert.equal(answer.approved, true, JSON.stringify(answer));
  await withPage('dispute-open', 'cardholder2', 'en-US', async (page) => {
    await page.goto(`${web}/console/transactions`);
    const row = page.locator('#results tbody tr', { hasText: '77.00' });
    await Promise.all([page.waitForNavigation(), row.locator('a').first().click()]);
    await page.fill('form.fraud textarea[name=description]', 'Not me: I was abroad.');
    await Promise.all([page.waitForNavigation(), page.click('form.fraud button[type=submit]')]);
    assert.match(page.url(), /\/console\/fraud-reports\/fr_[0-9a-f]{16}$/);
  });
  await withPage('dispute-review', 'bank', 'en-US', async (page) => {
    await page.goto(`${web}/console/disputes`);
    const row = page.locator('#disputes tbody tr', { hasText: '77.00' });
    await Promise.all([page.waitForNavigation(), row.locator('a').first().click()]);
    await page.selectOption('form.review select[name=decision]', 'chargeback');
    await Promise.all([page.waitForNavigation(), page.click('form.review button[type=submit]')]);
    assert.equal((await page.locator('#dispute-status').textContent()).trim(), 'charged_back');
  });
  await withPage('dispute-answer', 'shanghai.admin', 'en-US', async (page) => {
    await page.goto(`${web}/console/disputes`);
    const row = page.locator('#disputes tbody tr', { hasText: '77.00' });
    await Promise.all([page.waitForNavigation(), row.locator('a').first().click()]);
    await page.fill('form.answer textarea[name=evidence]', 'The cardholder signed the receipt with PIN; see the certificate.');
    assert.equal(await page.isChecked('form.answer input[name=certificate]'), true, 'the certificate is attached by default');
    await Promise.all([page.waitForNavigation(), page.click('form.answer button[type=submit]')]);
    assert.equal((await page.locator('#dispute-status').textContent()).trim(), 'answered');
    assert.match(await page.locator('#dispute-evidence').textContent(), /certificate-\d+\.json/);
    const link = page.locator('#dispute-files a', { hasText: 'certificate-' });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const certificate = JSON.parse(readFileSync(await download.path(), 'utf8'));
    assert.equal(certificate.format, 'easypos-certificate/1');
    const shown = (await page.locator('#dispute-files tbody tr', { hasText: 'certificate-' }).locator('td.mono').textContent()).trim();
    assert.equal(createHash('sha256').update(readFileSync(await download.path())).digest('hex'), shown);
  });
});

/** An anonymous page in `locale` (the public application form needs no sign-in). */
async function visitor(locale) {
  const context = await browser.newContext({ locale });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (message) => { if (message.type() === 'error') page.errors.push(message.text()); });
  page.on('pageerror', (error) => page.errors.push(String(error)));
  return page;
}

const applicants = {
  'en-US': {
    business: 'Nanshan Noodle Bar', credit: '914403001922038216', legal: 'Li Ming', id: '11010519491231002X',
    address: '8 Keyuan Road', city: 'Shenzhen', bank: 'Huangpu Commercial Bank',
    wrongCredit: /GB 32100 check character/, approved: /Approved/, saved: /draft is saved/,
  },
  'zh-CN': {
    business: '深圳面馆', credit: '91440300708461136T', legal: '李明', id: '440524188001010014',
    address: '科苑路8号', city: '深圳', bank: '黄浦商业银行',
    wrongCredit: /校验位不符合GB 32100规则/, approved: /已通过/, saved: /草稿已保存/,
  },
};

for (const [locale, a] of Object.entries(applicants)) {
  test(`a merchant applies online in ${locale}, is approved and gets activation codes`, async () => {
    const page = await visitor(locale);
    try {
      await page.goto(`${web}/console/login`);
      await Promise.all([page.waitForNavigation(), page.click('#apply-link')]);
      assert.match(page.url(), /\/console\/apply$/);
      if (locale === 'en-US') await guideShot(page, 'console-apply');
      // Checked as typed: a mistyped credit code gets its message without a page load.
      await page.fill('#field-credit_code', a.credit.slice(0, 17) + (a.credit.endsWith('6') ? '7' : '6'));
      await page.locator('#field-credit_code').blur();
      await page.waitForFunction(() => document.querySelector('#error-credit_code')?.textContent.trim().length > 0);
      assert.match(await page.locator('#error-credit_code').textContent(), a.wrongCredit);
      await page.fill('#field-credit_code', a.credit);
      await page.locator('#field-credit_code').blur();
      await page.waitForFunction(() => document.querySelector('#error-credit_code')?.textContent.trim() === '');
      // A draft with part of the form, then the rest.
      await page.fill('#field-business_name', a.business);
      await Promise.all([page.waitForNavigation(), page.click('button[value=save]')]);
      assert.match(await page.locator('#apply-message').textContent(), a.saved);
      assert.match(await page.locator('#tracking').textContent(), /^AP[0-9A-Z]{10}$/);
      assert.equal(await page.inputValue('#field-credit_code'), a.credit);
      // A document, uploaded from the browser (type sniffed on the server).
      await page.setInputFiles('#document-file', { name: 'licence.png', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]) });
      await Promise.all([page.waitForNavigation(), page.click('form.upload button')]);
      assert.equal(await page.locator('#documents li').count(), 1);
      assert.equal(await page.inputValue('#field-credit_code'), a.credit);
      await page.fill('#field-legal_name', a.legal);
      await page.fill('#field-id_number', a.id);
      await page.fill('#field-mobile', '13912345678');
      await page.fill('#field-address', a.address);
      await page.fill('#field-city', a.city);
      await page.selectOption('#field-mcc', '5812');
      await page.fill('#field-settlement_card', '6217000000000000018'.slice(0, 18) + luhn('621700000000000001'));
      await page.fill('#field-bank', a.bank);
      await page.fill('#field-monthly_volume', '60000');
      await page.fill('#field-terminal_count', '1');
      await page.selectOption('#field-terminal_kind', 'portable');
      await page.check('#field-consent');
      await Promise.all([page.waitForNavigation(), page.click('button[value=submit]')]);
      assert.match(await page.locator('#status').textContent(), a.approved);
      assert.match(await page.locator('#merchant-id').textContent(), /^898584058120\d{3}$/);
      assert.equal(await page.locator('.activation-code').count(), 1);
      assert.match(await page.locator('.activation-code').first().textContent(), /^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
      // The status page later shows the outcome, not the codes.
      await page.goto(`${web}/console/apply/status`);
      assert.match(await page.locator('#status').textContent(), a.approved);
      assert.equal(await page.locator('.activation-code').count(), 0);
      assert.deepEqual(page.errors, [], `${locale}: the browser reported errors`);
    } catch (error) {
      await page.screenshot({ path: join(shots, `apply-${locale}.png`), fullPage: true }).catch(() => {});
      throw error;
    } finally {
      await page.context().close();
    }
  });
}

/** The Luhn check digit of `body`. */
function luhn(body) {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let digit = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) { digit *= 2; if (digit > 9) digit -= 9; }
    sum += digit;
  }
  return String((10 - (sum % 10)) % 10);
}

/** `easypos terminal pay --method qr` in the background: the terminal shows its code (on
 * standard error with --json) and waits for the payment; resolves with the exit code and the
 * answer, and hands the code's payload to `onCode` as soon as it is shown. */
function qrPayment(terminalId, amount, onCode) {
  const work = join(dir, `terminal-qr-${terminalId}`);
  mkdirSync(work, { recursive: true });
  execFileSync(binary, ['terminal', 'init', '--demo', terminalId, '--host', iso], { cwd: work });
  const child = spawn(binary, ['terminal', 'pay', '--json', '--method', 'qr', '--amount', amount, '--wallet-url', web], { cwd: work });
  let out = '', err = '', shown = false;
  child.stdout.on('data', (chunk) => { out += chunk; });
  child.stderr.on('data', (chunk) => {
    err += chunk;
    const payload = err.match(/^(000201.+)$/m);
    const link = err.match(/^Or open on the phone: (\S+)$/m);
    if (!shown && payload && link) { shown = true; onCode(payload[1], link[1]); }
  });
  return new Promise((resolve) => child.on('exit', (code) => {
    if (!shown) onCode(null, null, new Error(`the terminal exited ${code} without showing a code: ${err}`));
    resolve({ code, answer: out ? JSON.parse(out) : null, err });
  }));
}

test('a cardholder pays the terminal\'s QR code on the wallet page while the terminal waits', async () => {
  await withPage('wallet', 'cardholder1', 'en-US', async (page) => {
    await page.setViewportSize({ width: 390, height: 844 }); // a phone
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Wallet")')]);
    assert.equal(await page.locator('h1').textContent(), 'Panda Pay wallet');
    assert.equal((await page.locator('#balance').textContent()).trim(), 'CNY 0.00');
    // Top up from the linked debit card, confirmed with the wallet password.
    await page.fill('#top-up input[name=amount]', '100.00');
    await page.fill('#top-up input[name=password]', '135790');
    await Promise.all([page.waitForNavigation(), page.click('#top-up button')]);
    assert.equal((await page.locator('#balance').textContent()).trim(), 'CNY 100.00');

    // The cashier asks for 12.34; the terminal shows its code and polls the host.
    let code, fail;
    const shown = new Promise((resolve, reject) => { code = resolve; fail = reject; });
    const terminal = qrPayment('10000002', '12.34', (payload, link, error) => (error ? fail(error) : code({ payload, link })));
    const { payload, link } = await shown;
    assert.match(link, /\/wallet\/scan\?payload=/);

    // The consumer pastes the code: merchant and amount, then a wrong password first.
    await page.fill('#paste textarea', payload);
    await Promise.all([page.waitForNavigation(), page.click('#paste button')]);
    assert.match(await page.locator('#merchant').textContent(), /Lujiazui Coffee/);
    assert.equal((await page.locator('#amount').textContent()).trim(), 'CNY 12.34');
    await page.fill('#confirm input[name=password]', '000000');
    await Promise.all([page.waitForNavigation(), page.click('#confirm button')]);
    assert.match(await page.locator('.alert').textContent(), /Wrong payment password.*Tries left: 4/);
    page.errors = page.errors.filter((text) => !text.includes('401'));
    await page.fill('#confirm input[name=password]', '135790');
    await Promise.all([page.waitForNavigation(), page.click('#confirm button')]);
    assert.equal(await page.locator('#paid').count(), 1);
    assert.equal((await page.locator('#balance').textContent()).trim(), 'CNY 87.66');

    // The terminal's query finds the payment and prints the voucher.
    const { code: exit, answer } = await terminal;
    assert.equal(exit, 0, JSON.stringify(answer));
    assert.equal(answer.status, 'paid');
    assert.equal(answer.wallet_id, 'W-CH001');

    // The history lists it; the deep link of a paid order says so and charges nothing.
    await page.goto(`${web}/wallet`);
    assert.match(await page.locator('#history').textContent(), /Lujiazui Coffee.*CNY 12\.34.*Paid/s);
    await page.goto(link.replace(/^http:\/\/[^/]+/, web));
    assert.match(await page.locator('.alert').textContent(), /already paid/);
    page.errors = page.errors.filter((text) => !text.includes('409'));

    // The other way round: the page's one-time payment code, scanned (typed) at the counter.
    await page.goto(`${web}/wallet`);
    assert.equal(await page.locator('#paycode svg[aria-label=barcode]').count(), 1);
    const digits = await page.getAttribute('#paycode-digits', 'data-code');
    assert.match(digits, /^8840\d{17}$/);
    const work = join(dir, 'terminal-qr-10000002');
    const charged = JSON.parse(execFileSync(binary, ['terminal', 'pay', '--json', '--method', 'qr', '--amount', '5.00', '--wallet-url', web, '--code', digits], { cwd: work, encoding: 'utf8' }));
    assert.equal(charged.status, 'paid', JSON.stringify(charged));
    await page.goto(`${web}/wallet`);
    assert.equal((await page.locator('#balance').textContent()).trim(), 'CNY 82.66');
  });
});

test('a merchant admin works a risk case to a terminal block and freezes refunds in an emergency', async () => {
  // 6,000.00 on a card the engine has not seen today: the demo rule `new-card-high-amount`
  // puts it up for review, approved, and a case opens in the background. (Not CH001-C: the
  // fraud report above froze it.)
  const flagged = sale('10000001', 'card-CH003-C', '6000.00');
  assert.equal(flagged.approved, true, JSON.stringify(flagged));
  await withPage('case-queue', 'shanghai.admin', 'en-US', async (page) => {
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Cases")')]);
    // The fraud reports above opened cases too: wait for the rule's own (written in the
    // background), which is then the newest.
    const link = page.locator('#cases tbody tr', { hasText: 'new-card-high-amount' }).locator('a').first();
    for (let tries = 0; (await link.count()) === 0 && tries < 20; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await page.reload();
    }
    assert.match(await page.locator('#cases tbody tr').first().textContent(), /new-card-high-amount\(review,30\)/);
    assert.match(await page.locator('#cases tbody tr').first().textContent(), /625678\*{6}\d{4}/);
    await guideShot(page, 'console-cases');
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

test('a merchant admin freezes a terminal in an emergency and opens an incident that operations see', async () => {
  // Chen Jing's card: the fraud-report tests above froze Li Lei's and Han Meimei's.
  const before = sale('20000001', 'card-CH004-D', '3.30');
  assert.equal(before.approved, true, JSON.stringify(before));
  await withPage('emergency-incident', 'beijing.admin', 'en-US', async (page) => {
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Emergency")')]);
    await page.selectOption('select[name=target]', 'terminal:20000001');
    await page.fill('input[name=reason]', 'terminal taken from the counter');
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/freeze"] button')]);
    assert.match(await page.locator('#freezes tr', { hasText: 'terminal:20000001' }).textContent(), /terminal taken from the counter/);
    // The frozen terminal's next sale is declined 58 by the host.
    const frozen = sale('20000001', 'card-CH004-D', '4.40');
    assert.equal(frozen.approved, false, JSON.stringify(frozen));
    assert.equal(frozen.response_code, '58');
    // The declined sale's id, from the merchant's own transactions.
    await page.goto(`${web}/console/transactions`);
    const declined = page.locator('#results tbody tr', { hasText: '4.40' }).first();
    const href = await declined.locator('a').first().getAttribute('href');
    const transaction = href.split('/').pop();
    // The incident, from the console, linking it.
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Incidents")')]);
    await page.fill('#open-incident input[name=title]', 'Terminal 20000001 stolen');
    await page.selectOption('#open-incident select[name=severity]', 'critical');
    await page.fill('#open-incident textarea[name=description]', 'Taken from the counter at 14:10; frozen at once.');
    await page.fill('#open-incident input[name=transactions]', transaction);
    await Promise.all([page.waitForNavigation(), page.click('#open-incident button[type=submit]')]);
    assert.match(page.url(), /\/console\/incidents\/\d+$/);
    assert.equal((await page.locator('#incident-status').textContent()).trim(), 'open');
    assert.match(await page.locator('#incident-partners').textContent(), /P001/);
    assert.match(await page.locator('#incident-transactions').textContent(), new RegExp(`\\b${transaction}\\b`));
    // A message with a file, as the browser uploads it.
    await page.fill('#incident-message input[name=text]', 'photo of the empty counter');
    await page.setInputFiles('#incident-message input[name=file]', { name: 'counter.png', mimeType: 'image/png', buffer: Buffer.from('89504e470d0a1a0a636f756e746572', 'hex') });
    await Promise.all([page.waitForNavigation(), page.click('#incident-message button[type=submit]')]);
    assert.match(await page.locator('#incident-thread').textContent(), /photo of the empty counter.*counter\.png/s);
  });
  // Operations see it, and acknowledge it within its target.
  await withPage('incident-operations', 'operator', 'en-US', async (page) => {
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Incidents")')]);
    const row = page.locator('#incidents tbody tr', { hasText: 'Terminal 20000001 stolen' });
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), /critical/);
    await Promise.all([page.waitForNavigation(), row.locator('a').first().click()]);
    await page.fill('#incident-move input[name=note]', 'terminal blocked; replacement on the way');
    await Promise.all([page.waitForNavigation(), page.click('#incident-move button[value=acknowledged]')]);
    assert.equal((await page.locator('#incident-status').textContent()).trim(), 'acknowledged');
    assert.match(await page.locator('#incident-breach').textContent(), /Within target/);
    // The terminal is still frozen for operations too; lift it so later tests start clean.
    await Promise.all([page.waitForNavigation(), page.click('header nav a:text-is("Emergency")')]);
    const freeze = page.locator('#freezes tr', { hasText: 'terminal:20000001' });
    await Promise.all([page.waitForNavigation(), freeze.locator('button').click()]);
  });
});

test('anyone reads the guides at /docs in their language, and a guide links to another', async () => {
  const page = await visitor('zh-CN');
  try {
    const index = await page.goto(`${web}/docs`);
    assert.equal(index.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    await Promise.all([page.waitForNavigation(), page.click('#guides a[href="/docs/cashier"]')]);
    assert.equal((await page.locator('h1').textContent()).trim(), '收银员指南');
    assert.ok((await page.locator('pre code').count()) > 5, 'the terminal screens are shown');
    await Promise.all([page.waitForNavigation(), page.click('a[href="/docs/glossary"]')]);
    assert.equal((await page.locator('h1').textContent()).trim(), '术语表');
    assert.deepEqual(page.errors, []);
    const missing = await page.goto(`${web}/docs/nope`);
    assert.equal(missing.status(), 404);
  } finally {
    await page.context().close();
  }
});

test('a cardholder sets the alerts of their card and of their wallet, and the next sale is alerted', async () => {
  await withPage('alerts', 'cardholder1', 'en-US', async (page) => {
    // The card: text messages for payments from 10.00 up (declines always).
    await page.goto(`${web}/console/cards/card-CH001-D`);
    await page.check('#alert-settings input[name=sms]');
    await page.fill('#alert-settings input[name=phone]', '+8613800001234');
    await page.fill('#alert-settings input[name=min_amount]', 'ten');
    await Promise.all([page.waitForNavigation(), page.click('#save-alerts')]);
    assert.match(await page.locator('#alerts-message').textContent(), /give the amount in yuan/);
    // The refusal is a 400 on purpose; the form keeps what was typed.
    page.errors = page.errors.filter((text) => !text.includes('400'));
    assert.equal(await page.inputValue('#alert-settings input[name=phone]'), '+8613800001234');
    await page.fill('#alert-settings input[name=min_amount]', '10.00');
    await Promise.all([page.waitForNavigation(), page.click('#save-alerts')]);
    assert.equal((await page.locator('#alerts-message').textContent()).trim(), 'Saved.');
    assert.equal(await page.inputValue('#alert-settings input[name=min_amount]'), '10.00');
    // The next sale of the card (12.00, above the threshold) is alerted by text message (the
    // logging SMS adapter), and the card's page lists it. At 20000001: 10000001 is blocked by
    // the case above, and the QR payment signed 10000002 on from another directory. The card
    // goes to that shop with its chip: its file (and so its ATC) comes along.
    copyFileSync(join(dir, 'terminal-10000001', 'card-CH001-D.json'), join(dir, 'terminal-20000001', 'card-CH001-D.json'));
    const answer = sale('20000001', 'card-CH001-D', '12.00');
    assert.equal(answer.approved, true, JSON.stringify(answer));
    // The dispatcher sends it within a few seconds (it waits 2 s for the journal to settle):
    // open the card's page again until the alert is listed (not a reload, which would post
    // the settings form again).
    const row = page.locator('#alerts tbody tr', { hasText: 'CNY 12.00' });
    for (let tries = 0; (await row.count()) === 0 && tries < 60; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await page.goto(`${web}/console/cards/card-CH001-D`);
    }
    assert.match(await row.first().textContent(), /sms.*CNY 12\.00.*\d{6}\*{6}\d{4}/s);
    await guideShot(page, 'console-card-alerts');

    // The wallet has its own settings: e-mail from 5.00 up.
    await page.goto(`${web}/wallet`);
    await Promise.all([page.waitForNavigation(), page.click('#wallet-alerts')]);
    assert.equal(await page.locator('h1').textContent(), 'Wallet alerts');
    await page.check('#alert-settings input[name=email_channel]');
    await Promise.all([page.waitForNavigation(), page.click('#save-alerts')]);
    assert.match(await page.locator('#alerts-message').textContent(), /channel email needs email/);
    page.errors = page.errors.filter((text) => !text.includes('400'));
    await page.check('#alert-settings input[name=email_channel]');
    await page.fill('#alert-settings input[name=email]', 'li.lei@example.test');
    await page.fill('#alert-settings input[name=min_amount]', '5');
    await Promise.all([page.waitForNavigation(), page.click('#save-alerts')]);
    assert.equal((await page.locator('#alerts-message').textContent()).trim(), 'Saved.');
    await page.goto(`${web}/wallet/alerts`);
    assert.equal(await page.inputValue('#alert-settings input[name=min_amount]'), '5.00');
    assert.equal(await page.inputValue('#alert-settings input[name=email]'), 'li.lei@example.test');
    assert.equal(await page.isChecked('#alert-settings input[name=email_channel]'), true);
    // The card's settings stayed as they were.
    await page.goto(`${web}/console/cards/card-CH001-D`);
    assert.equal(await page.isChecked('#alert-settings input[name=sms]'), true);
    assert.equal(await page.isChecked('#alert-settings input[name=email_channel]'), false);
  });
});

// Last: once the merchant has procedures, its staff land on them at sign-in.
test('a merchant admin writes the procedures, the cashier is asked to acknowledge them at sign-in, and the admin sees the training record', async () => {
  await withPage('procedures-admin', 'shanghai.admin', 'en-US', async (page) => {
    await page.goto(`${web}/console/procedures`);
    await page.fill('#procedures-editor textarea[name=text]', '1. A refund needs a supervisor\'s password.\n2. Never share a password.');
    await page.fill('#procedures-editor input[name=note]', 'first version');
    await Promise.all([page.waitForNavigation(), page.click('#procedures-editor button[type=submit]')]);
    assert.match(await page.locator('#procedures-text').textContent(), /Never share a password/);
  });
  await withPage('procedures-cashier', 'shanghai.cashier', 'en-US', async (page) => {
    assert.match(page.url(), /\/console\/procedures$/, 'sent to the procedures at sign-in');
    await Promise.all([page.waitForNavigation(), page.click('#acknowledge button[type=submit]')]);
    assert.match(await page.locator('#procedures-done').textContent(), /acknowledged version 1/);
  });
  await withPage('procedures-record', 'shanghai.admin', 'en-US', async (page) => {
    await page.goto(`${web}/console/procedures`);
    const row = (user) => page.locator(`#training-record tr:has(td:text-is("${user}"))`).textContent();
    assert.match(await row('shanghai.cashier'), /acknowledged/);
    assert.match(await row('shanghai.manager'), /not yet/);
  });
});

test('a merchant admin adds a cashier with a temporary password, which the cashier must change at the first sign-in', async () => {
  await withPage('staff-add', 'shanghai.admin', 'en-US', async (page) => {
    await page.goto(`${web}/console/staff`);
    await page.fill('input[name=username]', 'wang.fang');
    await page.fill('input[name=display_name]', 'Wang Fang');
    await page.selectOption('select[name=role]', 'cashier');
    await page.fill('input[name=password]', 'temporary-pass-2026');
    await Promise.all([page.waitForNavigation(), page.click('form[action="/console/staff"] button[type=submit]')]);
    assert.match(await page.locator('.alert').textContent(), /temporary password/);
  });
  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  try {
    await page.goto(`${web}/console/login`);
    await page.fill('input[name=username]', 'wang.fang');
    await page.fill('input[name=password]', 'temporary-pass-2026');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(page.url(), /\/console\/password$/, 'the new cashier must choose a password first');
    assert.match(await page.locator('#password-note').textContent(), /first sign-in/);
    await page.goto(`${web}/console/dashboard`);
    assert.match(page.url(), /\/console\/password$/, 'and nothing else before');
    await page.fill('#new-password input[name=password]', 'wang-fang-own-2026');
    await page.fill('#new-password input[name=again]', 'wang-fang-own-2026');
    await Promise.all([page.waitForNavigation(), page.click('#new-password button[type=submit]')]);
    // The merchant has procedures (the test before): the new cashier acknowledges them next.
    assert.match(page.url(), /\/console\/procedures$/);
    await Promise.all([page.waitForNavigation(), page.click('#acknowledge button[type=submit]')]);
    assert.match(await page.locator('#procedures-done').textContent(), /acknowledged version 1/);
  } catch (error) {
    await page.screenshot({ path: join(shots, 'staff-first-login.png'), fullPage: true }).catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
});

test('a merchant admin searches the audit log and exports it with a proof that easypos verifies offline', async () => {
  await withPage('audit-export', 'shanghai.admin', 'en-US', async (page) => {
    await page.goto(`${web}/console/audit`);
    await page.fill('#audit-search input[name=action]', 'procedures.');
    await Promise.all([page.waitForNavigation(), page.click('#audit-search button[type=submit]')]);
    const actions = await page.locator('#audit-entries tbody tr td:nth-child(4)').allTextContents();
    assert.ok(actions.length >= 2, `${actions}`);
    assert.ok(actions.every((action) => action.startsWith('procedures.')), `${actions}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audit-export')]);
    const file = join(dir, 'audit-export.json');
    await download.saveAs(file);
    const verified = execFileSync(binary, ['audit', 'verify', '--export', file], { cwd: dir, encoding: 'utf8' });
    assert.match(verified, /^export intact: \d+ entries/);
    // The same file with one acknowledgement's time moved: caught.
    const exported = JSON.parse(readFileSync(file, 'utf8'));
    exported.entries[0].at += 1;
    writeFileSync(file, JSON.stringify(exported));
    let status = 0;
    let out = '';
    try {
      execFileSync(binary, ['audit', 'verify', '--export', file], { cwd: dir, encoding: 'utf8' });
    } catch (error) {
      status = error.status;
      out = error.stdout;
    }
    assert.equal(status, 1);
    assert.match(out, /export BROKEN: entry \d+ was changed/);
  });
});
