// Installs this extension into a running A1111 the way a user does: Extensions tab, "Install from URL", Install,
// then reads the result line. The host must be restarted afterwards for the extension to load.
// Usage: node tools/ui_install_from_url.cjs http://127.0.0.1:7860 <git url> <out dir>
// Needs playwright-core (npm) and Debian's chromium; PLAYWRIGHT_CORE may point at the module.
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const [url, gitUrl, outDir] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(url, { waitUntil: 'networkidle', timeout: 120000 });
  await page.locator('#tabs > .tab-nav button', { hasText: 'Extensions' }).click();
  await page.locator('#tabs_extensions > .tab-nav button', { hasText: 'Install from URL' }).click();
  await page.getByLabel("URL for extension's git repository").fill(gitUrl);
  await page.getByRole('button', { name: 'Install', exact: true }).locator('visible=true').click();
  // The result line replaces gradio's "processing" text when the clone and install.py are done.
  await page.waitForFunction(() => /Installed into|Error|Exception/.test(document.querySelector('#extension_install_result')?.innerText || ''),
    null, { timeout: 300000, polling: 500 });
  console.log('install result:', await page.locator('#extension_install_result').first().innerText());
  await page.screenshot({ path: `${outDir}/install-from-url.png`, fullPage: false });
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
