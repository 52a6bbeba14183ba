// End-to-end tests of the web interface: the real `rappel` binary on loopback with a fresh SQLite
// database, driven by Debian's Chromium (headless) through playwright-core. Practices and users
// are made with the CLI, facts arrive through the JSON API, and everything else happens in the
// browser, as a practice would do it. Screenshots of the main pages land in e2e/screenshots/.
//
// Run: `bash scripts/e2e.sh` (builds nothing itself: it needs target/debug/rappel).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
const bin = process.env.RAPPEL_BIN ?? path.join(targetDir, 'debug', 'rappel');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(root, 'e2e', 'screenshots');
const PASSWORD = 'correct-horse-battery';

let work;
let server;
let serverLog = '';
let base;
let browser;
const keys = {};

function cli(args, extraEnv = {}) {
  const out = execFileSync(bin, args, {
    cwd: work,
    env: { ...process.env, RAPPEL_DATABASE_URL: `sqlite://${work}/rappel.db`, RAPPEL_LOG: 'warn', ...extraEnv },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop());
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function api(practice, method, url, body) {
  const response = await fetch(base + url, {
    method,
    headers: { authorization: `Bearer ${keys[practice]}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${url} → ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A one-page PDF with a correct cross-reference table, built here (no fixture file). */
function onePagePdf() {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>',
    '<< /Length 0 >>\nstream\n\nendstream',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) pdf += `${String(offset).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(pdf);
}

/** `days` from today at `hour`:00, Paris time, as RFC 3339. */
function parisInstant(days, hour) {
  // The calendar day in Paris, like `parisDay`: between 23:00 and midnight UTC the UTC date is
  // already a day behind Paris's, and the eve of an appointment would be its day.
  const [year, month, date] = parisDay(days).split('-').map(Number);
  const day = new Date(Date.UTC(year, month - 1, date, hour - 1));
  // Paris is UTC+1 in winter and UTC+2 in summer; the test only needs a plausible daytime slot.
  return day.toISOString().replace('.000Z', 'Z');
}

/** The calendar day `days` from today in Paris, `YYYY-MM-DD`. */
function parisDay(days) {
  const day = new Date(Date.now() + days * 86400000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris' }).format(day);
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(base + '/connexion');
  await page.getByLabel('Adresse email').fill(email);
  await page.getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Se connecter' }).click();
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** CRC-32 (IEEE), as PNG chunks need it; `zlib.crc32` only exists from Node 20.15. */
function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A PNG of `width`×`height` pixels (a blue band on white), built by hand: no image library. */
function png(width, height) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3, 255);
    row[0] = 0;
    if (y > height / 3 && y < (2 * height) / 3) {
      for (let x = 0; x < width; x++) {
        row[1 + x * 3] = 11;
        row[2 + x * 3] = 92;
        row[3 + x * 3] = 173;
      }
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rappel-e2e-'));
  mkdirSync(shots, { recursive: true });
  const rosa = cli(['practice', 'create', 'Cabinet des Lilas', '--preset', 'rosa']);
  const lifen = cli(['practice', 'create', 'Centre Lifen Test', '--preset', 'lifen']);
  keys.rosa = rosa.api_key;
  keys.lifen = lifen.api_key;
  const env = { RAPPEL_USER_PASSWORD: PASSWORD };
  cli(['user', 'create', '--practice', rosa.id, '--email', 'admin@lilas.test', '--name', 'Alice Admin', '--role', 'admin'], env);
  cli(['user', 'create', '--practice', rosa.id, '--email', 'accueil@lilas.test', '--name', 'Samia Accueil', '--role', 'secretariat'], env);
  cli(['user', 'create', '--practice', lifen.id, '--email', 'admin@lifen.test', '--name', 'Louis Lifen', '--role', 'admin'], env);

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`], {
    cwd: work,
    env: { ...process.env, RAPPEL_DATABASE_URL: `sqlite://${work}/rappel.db`, RAPPEL_PUBLIC_URL: base },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(base + '/health')).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 100) throw new Error(`rappel serve did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  await api('rosa', 'PUT', '/v1/practitioners/dr-petit', { name: 'Dr Petit', email: 'petit@lilas.test' });
  await api('rosa', 'PUT', '/v1/patients/p-roux', {
    first_name: 'Claire',
    last_name: 'Roux',
    email: 'claire.roux@example.org',
    mobile: '06 11 22 33 44',
  });
  await api('rosa', 'PUT', '/v1/patients/p-xss', {
    first_name: '<script>window.__xss = 1</script>',
    last_name: '<img src=x onerror="window.__xss = 2">',
    email: 'xss@example.org',
  });
  await api('rosa', 'POST', '/v1/events', [
    {
      type: 'appointment.booked',
      id: 'rdv-roux',
      patient: 'p-roux',
      practitioner: 'dr-petit',
      start: parisInstant(5, 10),
      duration_minutes: 30,
      source: 'staff',
    },
    {
      type: 'appointment.booked',
      id: 'rdv-xss',
      patient: 'p-xss',
      practitioner: 'dr-petit',
      start: parisInstant(1, 15),
      duration_minutes: 30,
      source: 'online',
    },
  ]);
  // Lifen: a document for a patient with neither email nor postal address cannot be delivered
  // at all, so it lands in the to-verify box.
  await api('lifen', 'PUT', '/v1/patients/p-sans', { first_name: 'Yves', last_name: 'Marchand' });
  await api('lifen', 'POST', '/v1/events', { type: 'document.sent', id: 'doc-1', patient: 'p-sans', title: 'Ordonnance' });
  for (let i = 0; ; i++) {
    const entries = await api('lifen', 'GET', '/v1/inbox?box=to_verify');
    if ((entries.items ?? entries).length > 0) break;
    if (i > 100) throw new Error('no to-verify entry appeared');
    await new Promise((r) => setTimeout(r, 100));
  }

  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (work) rmSync(work, { recursive: true, force: true });
});

test('sign-in: a wrong password is refused, the right one opens the dashboard', async () => {
  const page = await browser.newPage();
  await signIn(page, 'admin@lilas.test', 'not-the-password');
  assert.equal(await page.getByRole('alert').textContent(), 'Adresse email ou mot de passe incorrect.');
  assert.equal(await page.title(), 'Connexion · Rappel');
  await shot(page, '01-connexion-erreur');

  await signIn(page, 'admin@lilas.test');
  await page.waitForURL(base + '/');
  assert.equal(await page.locator('h1').textContent(), 'Tableau de bord');
  assert.match(await page.locator('main').textContent(), /Demain/);
  await shot(page, '02-tableau-de-bord');
  await page.close();
});

test('a hostile `suite` (tab, line break, backslash, //) still lands on this site after sign-in', async () => {
  const origin = new URL(base).origin;
  // Raw in the query string: the server decodes `%09` to a tab, the form sends it back, and a
  // browser that followed `/<tab>/evil.example/` would strip the tab and go to evil.example.
  for (const suite of ['/%09/evil.example/', '/%0d%0a/evil.example/', '/%5Cevil.example/', '//evil.example/']) {
    // The page's Content-Security-Policy (`form-action 'self'`) makes Chromium abort a form's
    // redirect to another origin; without it the server's own decision is what is tested.
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${base}/connexion?suite=${suite}`);
    await page.getByLabel('Adresse email').fill('admin@lilas.test');
    await page.getByLabel('Mot de passe').fill(PASSWORD);
    // The page either leaves the sign-in form for a page of this site, or the browser asks
    // another origin for something (the open redirect): whichever comes first.
    const navigated = page
      .waitForEvent('framenavigated', (frame) => frame === page.mainFrame() && !frame.url().startsWith(base + '/connexion'))
      .then(() => 'stayed on this site');
    const leftSite = page
      .waitForEvent('request', (request) => new URL(request.url()).origin !== origin)
      .then((request) => `went to ${request.url()}`);
    const aborted = page
      .waitForEvent('requestfailed', (request) => request.method() === 'POST')
      .then((request) => `the sign-in was aborted: ${request.failure()?.errorText}`);
    for (const outcome of [navigated, leftSite, aborted]) outcome.catch(() => {});
    await page.getByRole('button', { name: 'Se connecter' }).click();
    assert.equal(await Promise.race([navigated, leftSite, aborted]), 'stayed on this site', suite);
    await page.waitForLoadState('load');
    assert.equal(new URL(page.url()).origin, origin, `${suite} → ${page.url()}`);
    assert.equal(page.url(), base + '/', suite);
    assert.equal(await page.locator('h1').textContent(), 'Tableau de bord');
    await context.close();
  }
});

test('a sign-in form posted from another site is refused and signs nobody in (login CSRF)', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The attacker's page, on an origin of its own, submits its form as soon as it loads.
  await page.route('http://attaquant.test/**', (route) =>
    route.fulfill({
      contentType: 'text/html; charset=utf-8',
      body: `<!doctype html><form id="f" method="post" action="${base}/connexion">
        <input name="email" value="admin@lilas.test"><input name="password" value="${PASSWORD}">
        </form><script>document.getElementById('f').submit()</script>`,
    }),
  );
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${base}/connexion` && r.request().method() === 'POST'),
    page.goto('http://attaquant.test/piege.html'),
  ]);
  assert.equal(response.status(), 403);
  assert.equal(await response.request().headerValue('origin'), 'http://attaquant.test');
  await page.waitForLoadState('load');
  assert.match(await page.locator('h1').textContent(), /Connexion refusée/);
  const cookies = await context.cookies(base);
  assert.deepEqual(cookies.filter((c) => c.name === 'rappel_session'), []);
  await context.close();
});

test('changing an option changes the plan: the D-1 reminder goes from "not sent" to planned', async () => {
  const page = await browser.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.goto(base + '/rendez-vous/rdv-roux');
  const reminderRow = page.locator('tr', { hasText: 'Rappel de rendez-vous' }).first();
  assert.match(await reminderRow.textContent(), /Non envoyé/);
  assert.match(await reminderRow.textContent(), /option/);
  await shot(page, '03-rendez-vous-avant');

  await page.goto(base + '/parametres');
  const option = page.getByLabel(/Envoyer un rappel par email 1 jour avant le rendez-vous/);
  assert.equal(await option.isChecked(), false);
  // The confirmation cannot be switched off: shown checked and disabled.
  const locked = page.getByLabel(/reçoit toujours une confirmation/);
  assert.equal(await locked.isChecked(), true);
  assert.equal(await locked.isDisabled(), true);
  await option.check();
  await shot(page, '04-parametres');
  await page.getByRole('button', { name: 'Enregistrer' }).first().click();
  await page.waitForURL(/\/parametres\?ok=enregistre/);
  assert.equal(await page.getByRole('status').textContent(), 'Modifications enregistrées.');
  assert.equal(await page.getByLabel(/Envoyer un rappel par email 1 jour avant le rendez-vous/).isChecked(), true);

  await page.goto(base + '/rendez-vous/rdv-roux');
  const rows = await page.locator('tr', { hasText: 'Rappel de rendez-vous' }).allTextContents();
  assert.ok(rows.some((r) => /Prévu/.test(r)), `a planned reminder in ${JSON.stringify(rows)}`);
  await shot(page, '05-rendez-vous-apres');

  // A refused value is shown at its field, and nothing is stored.
  await page.goto(base + '/parametres');
  await page.getByLabel("Nom d'expéditeur des SMS").fill('Lilas-Cab!');
  await page.getByRole('button', { name: 'Enregistrer' }).first().click();
  assert.match(await page.locator('#err-sms_sender').textContent(), /lettres sans accent/);
  await page.close();
});

test('a template with a syntax error is refused inline, then saved once fixed', async () => {
  const page = await browser.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.goto(base + '/modeles/reminder/sms');
  // The code of the templates is behind « Mode avancé ».
  await page.locator('details.advanced > summary').click();
  const text = page.getByLabel('Texte');
  const save = page.getByRole('button', { name: 'Enregistrer le code' });
  // The live preview follows the typing (htmx).
  await text.fill('{{ practice.name }} : RDV le {% for a in appointments %}{{ a.date_text }} à {{ a.time_text }}{% endfor %}, pensez à votre carte Vitale.');
  await page.locator('#apercu pre', { hasText: 'pensez à votre carte Vitale' }).waitFor();
  assert.match(await page.locator('#apercu').textContent(), /SMS facturé/);

  await text.fill('{{ practice.name }} : RDV le {% for a in appointments %}{{ a.date_text ');
  await save.click();
  const error = page.locator('#err-text');
  await error.waitFor();
  assert.match(await error.textContent(), /Ligne 1/);
  assert.equal(await text.getAttribute('aria-invalid'), 'true');
  await shot(page, '06-modele-erreur');

  // A variable that does not exist is caught at save time too, in French.
  await text.fill('Rappel : {{ appointment.date }}');
  await save.click();
  await page.locator('#err-text').waitFor();
  assert.match(await page.locator('#err-text').textContent(), /cette variable n'existe pas/);

  await text.fill('{{ practice.name }} : RDV le {% for a in appointments %}{{ a.date_text }} à {{ a.time_text }}{% endfor %}.');
  await save.click();
  await page.waitForURL(/ok=modele/);
  assert.equal(await page.getByRole('status').textContent(), 'Modèle enregistré.');
  assert.match(await page.locator('main').textContent(), /personnalisé par le cabinet/);
  await shot(page, '07-modele');

  // "Send me a test": the saved template, with sample data, to the number typed.
  await page.getByLabel('Numéro de mobile').fill('06 12 34 56 78');
  await page.getByRole('button', { name: 'Envoyer le test' }).click();
  await page.getByText('Test envoyé à').waitFor();
  await page.close();
});

test('uploading a logo resizes it to fit 150×75 and shows it', async () => {
  const page = await browser.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.goto(base + '/parametres');
  await page.getByLabel(/Charger un logo/).setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: png(600, 150) });
  await page.getByRole('button', { name: 'Envoyer le logo' }).click();
  await page.waitForURL(/ok=logo/);
  const img = page.getByAltText('Logo actuel du cabinet');
  await img.waitFor();
  const size = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
  assert.deepEqual(size, [150, 38]);

  // Not an image: refused with the reason, the stored logo untouched.
  await page.getByLabel(/Changer de logo/).setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('bonjour') });
  await page.getByRole('button', { name: 'Envoyer le logo' }).click();
  assert.match(await page.locator('#erreur-logo').textContent(), /PNG ou JPEG/);
  assert.deepEqual(await page.getByAltText('Logo actuel du cabinet').evaluate((el) => [el.naturalWidth, el.naturalHeight]), [150, 38]);
  await shot(page, '08-logo');
  await page.close();
});

test('a to-verify entry shows its reason and can be resolved', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'admin@lifen.test');
  await page.goto(base + '/a-verifier');
  const entry = page.locator('article.entry').first();
  assert.match(await entry.textContent(), /Document non remis/);
  assert.match(await entry.textContent(), /Ordonnance/);
  assert.match(await entry.textContent(), /Yves Marchand/);
  await shot(page, '09-a-verifier');
  await entry.getByRole('button', { name: 'Marquer comme traitée' }).click();
  await page.waitForURL(/ok=resolu/);
  assert.equal(await page.getByRole('status').textContent(), 'Entrée marquée comme traitée.');
  assert.equal(await page.locator('article.entry').count(), 0);
  await page.goto(base + '/a-verifier?traitees=1');
  assert.match(await page.locator('article.entry').first().textContent(), /Traitée/);
  await context.close();
});

test('a paid letter is confirmed with its price and address, and cannot be posted twice', async () => {
  // A patient with an address but no email: the document cannot go by email and, without the
  // postal option, lands in the to-verify box with « Renvoyer par courrier ».
  await api('lifen', 'PUT', '/v1/patients/p-courrier', {
    first_name: 'Odile',
    last_name: 'Garnier',
    address: { lines: ['5 rue Victor Hugo'], postal_code: '69002', city: 'Lyon' },
  });
  const uploadForm = new FormData();
  uploadForm.append('id', 'doc-2');
  uploadForm.append('patient', 'p-courrier');
  uploadForm.append('title', 'Compte rendu');
  uploadForm.append('file', new Blob([onePagePdf()], { type: 'application/pdf' }), 'compte-rendu.pdf');
  const upload = await fetch(base + '/v1/documents', {
    method: 'POST',
    headers: { authorization: `Bearer ${keys.lifen}` },
    body: uploadForm,
  });
  assert.equal(upload.status, 201, await upload.text());
  for (let i = 0; ; i++) {
    const entries = await api('lifen', 'GET', '/v1/inbox?box=to_verify');
    if ((entries.items ?? entries).some((e) => e.document === 'doc-2')) break;
    if (i > 100) throw new Error('no to-verify entry for doc-2');
    await new Promise((r) => setTimeout(r, 100));
  }
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'admin@lifen.test');
  await page.goto(base + '/a-verifier');
  const entry = page.locator('article.entry', { hasText: 'Odile Garnier' });
  await entry.getByRole('link', { name: /Renvoyer par courrier/ }).click();
  // Nothing is posted yet: the page names the address and that the letter is paid.
  await page.waitForURL(/\/documents\/doc-2\/renvoi-postal/);
  const confirmation = await page.locator('main').textContent();
  assert.match(confirmation, /69002 LYON/);
  assert.match(confirmation, /payant|Coût de ce courrier/);
  await shot(page, '19-courrier-confirmation');
  const form = page.locator('form', { has: page.getByRole('button', { name: "Confirmer l'envoi du courrier" }) });
  const csrf = await form.locator('input[name=_csrf]').getAttribute('value');
  await page.getByRole('button', { name: "Confirmer l'envoi du courrier" }).click();
  await page.waitForURL(/ok=renvoi/);
  // The entry is handled: it leaves the box.
  assert.equal(await page.locator('article.entry', { hasText: 'Odile Garnier' }).count(), 0);
  // The same confirmation sent again (a double click, the back button) posts nothing more.
  const again = await page.request.post(base + '/documents/doc-2/renvoi-postal', {
    form: { _csrf: csrf, retour: '/a-verifier', confirme: 'oui' },
    maxRedirects: 0,
  });
  assert.equal(again.status(), 303);
  const sofar = await api('lifen', 'GET', '/v1/documents/doc-2');
  assert.match(again.headers().location, /ok=renvoi-deja/, JSON.stringify(sofar.deliveries));
  await page.goto(base + '/documents/doc-2/renvoi-postal');
  assert.match(await page.locator('main').textContent(), /déjà/);
  assert.equal(await page.getByRole('button', { name: "Confirmer l'envoi du courrier" }).count(), 0);
  const details = await api('lifen', 'GET', '/v1/documents/doc-2');
  const letters = details.deliveries.filter((d) => d.channel === 'postal' && d.key.includes('manual_postal'));
  assert.equal(letters.length, 1, JSON.stringify(details.deliveries));
  await context.close();
});

test('a secretariat user is refused the settings page and does not see it in the menu', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'accueil@lilas.test');
  await page.waitForURL(base + '/');
  const menu = await page.getByRole('navigation', { name: 'Menu principal' }).textContent();
  assert.doesNotMatch(menu, /Paramètres/);
  const response = await page.goto(base + '/parametres');
  assert.equal(response.status(), 403);
  assert.match(await page.getByRole('alert').textContent(), /réservée aux administrateurs/);
  // The pages a secretary works with are there.
  assert.equal((await page.goto(base + '/envoyes')).status(), 200);
  await shot(page, '10-envoyes');
  await context.close();
});

test('a <script> in a patient name is shown as text, never run', async () => {
  const page = await browser.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.goto(base + '/patients?q=script');
  const link = page.locator('main table a').first();
  assert.equal(await link.textContent(), '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2">');
  await link.click();
  await page.waitForURL(/\/patients\/p-xss/);
  assert.match(await page.locator('h1').textContent(), /<script>/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.locator('main script').count(), 0);
  assert.equal(await page.locator('main img[src="x"]').count(), 0);
  await page.goto(base + '/');
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  await page.close();
});

test('the other main pages render for the screenshots', async () => {
  const page = await browser.newPage();
  await signIn(page, 'admin@lilas.test');
  for (const [name, url] of [
    ['11-patient', '/patients/p-roux'],
    ['12-patients', '/patients'],
    ['13-modeles', '/modeles'],
    ['14-programmateur-nouvelle', '/programmateur/nouvelle'],
    ['15-notifications', '/notifications'],
    ['16-utilisateurs', '/utilisateurs'],
  ]) {
    const response = await page.goto(base + url);
    assert.equal(response.status(), 200, url);
    await shot(page, name);
  }
  // Any appointment's timeline, from its id.
  await page.goto(base + '/envoyes');
  await page.getByLabel(/Chronologie d'un rendez-vous/).fill('rdv-roux');
  await page.getByRole('button', { name: 'Voir' }).click();
  await page.waitForURL(/\/rendez-vous\/rdv-roux$/);
  assert.equal(await page.locator('h1').textContent(), 'Chronologie du rendez-vous');

  // A scheduled task made in the form, then its recipients preview.
  await page.goto(base + '/programmateur/nouvelle');
  await page.getByLabel('Nom affiché').fill('Absences de la veille');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  // The id is made from the name.
  await page.waitForURL(/\/programmateur\/absences-de-la-veille\?ok=tache/);
  await page.getByRole('link', { name: /Voir qui recevrait/ }).click();
  assert.match(await page.locator('h1').textContent(), /Aperçu/);
  await page.goto(base + '/programmateur');
  assert.match(await page.locator('main').textContent(), /Absences de la veille/);
  await shot(page, '17-programmateur');

  // On a tablet held upright the menu wraps and tables scroll inside their box.
  await page.setViewportSize({ width: 768, height: 1024 });
  await page.goto(base + '/');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a tablet`);
  await shot(page, '18-tableau-de-bord-tablette');
  await page.close();
});

test('a planned SMS to a landline says « Ne partira pas » at once, and « Prévu » once the number is fixed', async () => {
  await api('rosa', 'PATCH', '/v1/settings', { sms_reminder_1d: true });
  await api('rosa', 'PUT', '/v1/patients/p-fixe', { first_name: 'Hélène', last_name: 'Fixe', mobile: '01 23 45 67 89' });
  await api('rosa', 'POST', '/v1/events', {
    type: 'appointment.booked',
    id: 'rdv-fixe',
    patient: 'p-fixe',
    practitioner: 'dr-petit',
    start: parisInstant(4, 11),
    duration_minutes: 30,
    source: 'staff',
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.goto(base + '/patients/p-fixe');
  const sms = page.locator('tr', { hasText: 'SMS' }).filter({ hasText: 'Rappel' });
  assert.match(await sms.textContent(), /Ne partira pas/);
  assert.match(await sms.textContent(), /numéro fixe/);
  await shot(page, '20-ne-partira-pas');
  await api('rosa', 'PUT', '/v1/patients/p-fixe', { first_name: 'Hélène', last_name: 'Fixe', mobile: '06 12 12 12 12' });
  await page.reload();
  assert.match(await sms.textContent(), /Prévu/);
  await context.close();
});

test('on a phone every page fits the screen: the menu folds behind a button and lists become cards', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.waitForURL(base + '/');
  for (const url of [
    '/',
    '/envoyes',
    '/a-verifier',
    '/notifications',
    '/patients',
    '/patients?q=roux',
    '/patients/p-roux',
    '/rendez-vous/rdv-roux',
    '/modeles',
    '/modeles/reminder/email',
    '/programmateur',
    '/programmateur/nouvelle',
    '/programmateur/absences-de-la-veille',
    '/parametres',
    '/utilisateurs',
    `/?jour=${parisDay(4)}`,
    '/rendez-vous?id=Roux',
    '/modeles/reminder/sms',
    '/modeles/confirmation/email',
  ]) {
    const response = await page.goto(base + url);
    assert.equal(response.status(), 200, url);
    const [scrollWidth, innerWidth] = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth]);
    assert.ok(scrollWidth <= innerWidth, `${url} is ${scrollWidth - innerWidth}px wider than a phone`);
  }
  // A sent message's detail, from the sent box's first row.
  await page.goto(base + '/envoyes');
  const detail = await page.locator('main table a[href^="/envoyes/"]').first().getAttribute('href');
  await page.goto(base + detail);
  const [sw, iw] = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth]);
  assert.ok(sw <= iw, `${detail} is ${sw - iw}px wider than a phone`);
  await page.goto(base + '/modeles/reminder/email');
  await shot(page, '24-modele-telephone');
  // The menu is folded until the button opens it.
  await page.goto(base + '/');
  const menu = page.getByRole('navigation', { name: 'Menu principal' });
  assert.equal(await menu.isVisible(), false);
  await page.locator('label.menu-button').click();
  assert.equal(await menu.isVisible(), true);
  await menu.getByRole('link', { name: 'Patients' }).click();
  await page.waitForURL(/\/patients$/);
  await page.goto(base + '/patients/p-roux');
  await shot(page, '21-patient-telephone');
  await context.close();
});

test('the template editor: text with fields gives the SMS, and the email in both its parts', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'admin@lilas.test');
  // Only the messages the practice's policy can send are listed.
  await page.goto(base + '/modeles');
  assert.equal(await page.locator('a[href^="/modeles/document/"]').count(), 0);
  assert.ok((await page.locator('a[href^="/modeles/reminder/"]').count()) > 0);

  // The default SMS is readable French with fields, not code.
  await page.goto(base + '/modeles/confirmation/sms');
  const sms = await page.locator('#corps').inputValue();
  assert.match(sms, /\{Cabinet\} : .*\{Rendez-vous\}/);
  assert.doesNotMatch(sms, /\{%|\{\{/);
  assert.equal(await page.locator('details.advanced').getAttribute('open'), null);

  await page.goto(base + '/modeles/reminder/email');
  await page.locator('#objet').fill('Votre rendez-vous du ');
  // A field button inserts at the cursor (editor.js).
  await page.getByRole('button', { name: 'Date du rendez-vous' }).click();
  assert.equal(await page.locator('#objet').inputValue(), 'Votre rendez-vous du {Date du rendez-vous}');
  const body = page.locator('#corps');
  await body.fill('Bonjour ,\n\nÀ {Heure} avec {Praticien}.\nPlan : https://exemple.fr/plan\n\nÀ bientôt,\n{Cabinet}');
  // The cursor after « Bonjour », then the « Prénom » button.
  await body.evaluate((el) => el.setSelectionRange(8, 8));
  await page.getByRole('button', { name: 'Prénom', exact: true }).click();
  assert.match(await body.inputValue(), /^Bonjour \{Prénom\},/);
  // The live preview: the plain text, and the HTML as the patient sees it in a sandboxed frame.
  await page.locator('#apercu pre', { hasText: 'Bonjour Jeanne,' }).waitFor();
  const frame = page.locator('#apercu iframe.email-preview');
  assert.equal(await frame.getAttribute('sandbox'), '');
  const inside = page.frameLocator('#apercu iframe.email-preview');
  await inside.locator('p', { hasText: 'Bonjour Jeanne,' }).waitFor();
  assert.equal(await inside.locator('a[href="https://exemple.fr/plan"]').count(), 1);
  await shot(page, '22-modele-simple');
  await page.getByRole('button', { name: 'Enregistrer', exact: true }).click();
  await page.waitForURL(/ok=modele/);
  assert.match(await page.locator('main').textContent(), /personnalisé par le cabinet/);
  assert.match(await page.locator('#corps').inputValue(), /^Bonjour \{Prénom\},\n\nÀ \{Heure\}/);
  // Both parts were made from the one text, as the API shows them.
  const stored = await api('rosa', 'GET', '/v1/templates/reminder/email?locale=fr');
  const parts = stored.parts ?? stored;
  assert.match(parts.text, /Bonjour \{\{ prenom \}\},/);
  assert.match(parts.html, /<a href="https:\/\/exemple.fr\/plan"/);
  assert.match(parts.html, /<p style=/);
  // The code stays reachable behind « Mode avancé ».
  await page.locator('details.advanced > summary').click();
  assert.match(await page.getByLabel('HTML').inputValue(), /<!DOCTYPE html>/);
  await context.close();
});

test('names, not ids: the dashboard, the day navigation and the appointment search', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'admin@lilas.test');
  await page.waitForURL(base + '/');
  const main = page.locator('main');
  let text = await main.textContent();
  assert.match(text, /Claire Roux/);
  assert.match(text, /avec Dr Petit/);
  // The real recipient: the address it went to.
  assert.match(text, /claire\.roux@example\.org/);
  assert.doesNotMatch(text, /p-roux|dr-petit|rdv-roux|p-xss/);
  // Day by day, and back to today.
  await page.getByRole('link', { name: 'Jour suivant →' }).click();
  await page.waitForURL(new RegExp(`\\?jour=${parisDay(1)}$`));
  await page.getByRole('link', { name: 'Jour suivant →' }).click();
  await page.waitForURL(new RegExp(`\\?jour=${parisDay(2)}$`));
  await page.getByRole('link', { name: '← Jour précédent' }).click();
  await page.waitForURL(new RegExp(`\\?jour=${parisDay(1)}$`));
  await page.getByRole('link', { name: "Aujourd'hui" }).click();
  await page.waitForURL(base + '/');
  // The date picker: the eve of Claire Roux's appointment.
  await page.getByLabel('Aller au').fill(parisDay(4));
  await page.getByRole('button', { name: 'Afficher' }).click();
  await page.waitForURL(new RegExp(`\\?jour=${parisDay(4)}$`));
  text = await main.textContent();
  assert.match(text, /Claire Roux/);
  // The SMS reminder's number as the practice writes it.
  assert.match(text, /06 11 22 33 44/);
  assert.doesNotMatch(text, /p-roux|dr-petit|rdv-roux/);
  await shot(page, '23-tableau-de-bord-jour');
  // The sent box's appointment box finds an appointment by the patient's name.
  await page.goto(base + '/envoyes');
  await page.getByLabel(/Chronologie d'un rendez-vous/).fill('Roux');
  await page.getByRole('button', { name: 'Voir' }).click();
  await page.getByRole('link', { name: /RDV du .* avec Dr Petit/ }).first().click();
  await page.waitForURL(/\/rendez-vous\/rdv-roux$/);
  text = await main.textContent();
  assert.match(text, /Claire Roux/);
  assert.match(text, /Dr Petit/);
  await context.close();
});
