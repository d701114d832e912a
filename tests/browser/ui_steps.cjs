// One headless Chromium page that tests/test_webui_browser.py drives like a user. Each line on stdin is a JSON list of
// steps; each list is answered by one JSON line on stdout: {"results": [one per step]} or {"error": "...", "step": i}
// (after an error the page stays open for the next list). Logs go to stderr. Ends when stdin closes.
// A step: {"do": ACTION, ...}; the element is {"sel": css} or {"label": text} or {"role": r, "name": n}, narrowed by
// "hasText" and "visible"; the first match is used.
// Needs playwright-core (npm; PLAYWRIGHT_CORE may name its folder) and Debian's chromium (CHROMIUM may name it).
const readline = require('readline');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

function element(page, s) {
  let loc = s.label ? page.getByLabel(s.label, { exact: true })
    : s.role ? page.getByRole(s.role, { name: s.name, exact: true }) : page.locator(s.sel);
  if (s.hasText) loc = loc.filter({ hasText: s.hasText });
  if (s.visible) loc = loc.locator('visible=true');
  return loc.first();
}

const ACTIONS = {
  // "ready": a selector to wait for after the page settled (gradio builds the UI after the page has loaded).
  goto: async (page, s) => {
    await page.goto(s.url, { waitUntil: 'networkidle', timeout: s.timeout || 120000 });
    if (s.ready) await page.waitForSelector(s.ready, { timeout: s.timeout || 120000 });
    return null;
  },
  click: (page, s) => element(page, s).click(),
  fill: (page, s) => element(page, s).fill(String(s.value)),
  // A gradio number box or a slider's number box: typing alone is not sent until the field loses focus.
  number: async (page, s) => {
    const input = element(page, { ...s, sel: `${s.sel} input[type=number]` });
    await input.fill(String(s.value));
    await input.press('Tab');
  },
  // Clicks an upload button and picks "path" in the file chooser it opens, as a user does.
  upload: async (page, s) => {
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), element(page, s).click()]);
    await chooser.setFiles(s.path);
  },
  text: (page, s) => element(page, s).innerText(),
  texts: (page, s) => page.locator(s.sel).allInnerTexts(),
  count: (page, s) => page.locator(s.sel).count(),
  visible: (page, s) => element(page, s).isVisible(),
  box: (page, s) => element(page, s).boundingBox(),
  value: (page, s) => element(page, s).inputValue(),
  // Waits until the element's text (with "value": an input's value) matches the regular expression "match" (and
  // not "unless"); returns the text.
  wait: async (page, s) => {
    const re = new RegExp(s.match);
    const not = s.unless ? new RegExp(s.unless) : null;
    const deadline = Date.now() + (s.timeout || 60000);
    for (;;) {
      const loc = element(page, s);
      const text = !(await loc.count()) ? '' : s.value ? await loc.inputValue() : await loc.innerText();
      if (re.test(text) && !(not && not.test(text))) return text;
      if (Date.now() > deadline) throw new Error(`${s.sel || s.label || s.name} never matched /${s.match}/: ${text}`);
      await page.waitForTimeout(s.poll || 250);
    }
  },
  // Waits until an <img> inside the element has loaded a picture; returns its natural size.
  image: (page, s) => page.waitForFunction((sel) => {
    const img = document.querySelector(`${sel} img`);
    return img && img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
  }, s.sel, { timeout: s.timeout || 60000, polling: 250 }).then((h) => h.jsonValue()),
  screenshot: (page, s) => page.screenshot({ path: s.path, fullPage: !!s.full }).then(() => s.path),
};

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    // No network but loopback here: without these Chromium keeps trying to reach its services.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
  say({ ready: true });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const results = [];
    let failed = null;
    for (const [i, s] of JSON.parse(line).entries()) {
      try {
        const r = await ACTIONS[s.do](page, s);
        results.push(r === undefined ? null : r);
      } catch (e) {
        failed = { error: `${s.do}: ${String(e.message || e).split('\n')[0]}`, step: i, results };
        break;
      }
    }
    say(failed || { results });
  }
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
