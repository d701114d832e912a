// Drives a running A1111 with this extension through the Storyboard tab like a user: fills the form, clicks Train,
// watches the progress bar and loss, waits for the result, then looks for the model's card on the Lora page.
// Usage: node tools/ui_check_storyboard.cjs http://127.0.0.1:7860 <dataset folder> <out dir>
// Needs playwright-core (npm) and Debian's chromium; PLAYWRIGHT_CORE may point at the module.
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const [url, dataDir, outDir] = process.argv.slice(2);
const name = process.env.SB_NAME || 'sbui';

async function setNumber(page, id, value) {
  const input = page.locator(`#${id} input[type=number]`).first();
  await input.fill(String(value));
  await input.press('Tab');
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
  await page.goto(url, { waitUntil: 'networkidle', timeout: 120000 });
  await page.locator('#tabs > .tab-nav button', { hasText: 'Storyboard' }).click();
  await page.locator('#storyboard_data_dir textarea').fill(dataDir);
  await page.locator('#storyboard_name textarea').fill(name);
  await page.locator('#storyboard_scan').click();
  await page.waitForFunction(() => document.querySelector('#storyboard_report')?.innerText.includes('images'),
    null, { timeout: 60000 });
  log('scan report:', (await page.locator('#storyboard_report').first().innerText()).split('\n')[0]);
  await page.locator('#tab_storyboard .label-wrap', { hasText: 'Settings' }).first().click();
  await setNumber(page, 'storyboard_max_steps', 20);
  await setNumber(page, 'storyboard_resolution', 64);
  await setNumber(page, 'storyboard_batch_size', 2);
  await setNumber(page, 'storyboard_preview_every', 10);
  await setNumber(page, 'storyboard_min_timestep', 700);     // a slider: its number box
  await page.locator('#storyboard_train').click();
  let sawBar = false; let lastLoss = '';
  for (let i = 0; i < 600; i++) {
    await page.waitForTimeout(500);
    if (await page.locator('#tab_storyboard .progressDiv').count()) sawBar = true;
    const loss = await page.locator('#storyboard_loss').first().innerText();
    if (loss && loss !== lastLoss) { lastLoss = loss; log('progress text:', loss); }
    if (i === 16) await page.screenshot({ path: `${outDir}/storyboard-training.png`, fullPage: true });
    const status = await page.locator('#storyboard_status').first().innerText();
    if (/Finished|Interrupted|must|No |not /.test(status)) { log('status:', status.split('\n')[0]); break; }
  }
  log('progress bar seen:', sawBar);
  await page.screenshot({ path: `${outDir}/storyboard-done.png`, fullPage: true });
  await page.locator('#tabs > .tab-nav button', { hasText: 'txt2img' }).first().click();
  await page.locator('#txt2img_extra_tabs > .tab-nav button', { hasText: 'Lora' }).click();
  await page.evaluate(() => extraNetworksControlRefreshOnClick(new Event('click'), 'txt2img', 'lora'));
  await page.waitForTimeout(3000);
  const cards = await page.locator('#txt2img_lora_cards .card .name').allInnerTexts();
  log('lora cards:', JSON.stringify(cards));
  await page.screenshot({ path: `${outDir}/lora-cards.png`, fullPage: false });
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
