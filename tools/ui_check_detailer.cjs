// Drives the Storyboard detailer in a running A1111's img2img tab like a user: uploads a photo, opens the accordion,
// turns on detail-only, sets pass 1, clicks Generate and saves the result; then changes the settings, pastes the
// result's infotext with the paste button, reads the widgets back and generates again.
// Usage: node tools/ui_check_detailer.cjs http://127.0.0.1:7861 <photo.png> <out dir>
// Writes ui-first.png, ui-pasted.png, ui-info.txt and ui-fields.json to <out dir>; compare them with
// `python tools/check_detailer_in_a1111.py URL --ui <out dir>`.
// Needs playwright-core (npm) and Debian's chromium; PLAYWRIGHT_CORE may point at the module.
const fs = require('fs');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const [url, photo, outDir] = process.argv.slice(2);
const S = '#script_img2img_storyboard_detailer';
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

async function setNumber(page, sel, value) {
  const input = page.locator(`${sel} input[type=number]`).first();
  await input.fill(String(value));
  await input.press('Tab');
}

async function setCheck(page, sel, on) {
  const box = page.locator(`${sel} input[type=checkbox]`).first();
  if ((await box.isChecked()) !== on) await box.click();
}

async function generate(page, file) {
  // Each generation serves its image under a new temporary file name, even when the pixels repeat.
  const srcOf = () => page.evaluate(() => document.querySelector('#img2img_gallery img')?.getAttribute('src') || '');
  const before = await srcOf();
  await page.locator('#img2img_generate').click();
  await page.waitForFunction((b) => {
    const src = document.querySelector('#img2img_gallery img')?.getAttribute('src') || '';
    const info = document.querySelector('#html_info_img2img')?.innerText || '';
    return src && src !== b && /Storyboard detailer|Error/.test(info);
  }, before, { timeout: 600000 });
  const src = await srcOf();
  const res = await page.request.get(new URL(src, url).toString());
  fs.writeFileSync(file, await res.body());
  return page.locator('#html_info_img2img').first().innerText();
}

async function fields(page) {
  const val = (sel) => page.locator(sel).first().inputValue();
  return {
    accordion: await page.locator(`${S}_enabled-checkbox input[type=checkbox]`).first().isChecked(),
    detail_only: await page.locator(`${S}_detail_only input[type=checkbox]`).first().isChecked(),
    p1_prompt: await val(`${S}_p1_prompt textarea`),
    p1_denoise: await val(`${S}_p1_denoise input[type=number]`),
    p1_inpaint_width: await val(`${S}_p1_inpaint_width input[type=number]`),
    p1_detector: await val(`${S}_p1_detector input`),
    p2_enabled: await page.locator(`${S}_p2_enabled input[type=checkbox]`).first().isChecked(),
  };
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  await page.goto(url, { waitUntil: 'networkidle', timeout: 120000 });
  await page.locator('#tabs > .tab-nav button', { hasText: 'img2img' }).first().click();
  await page.setInputFiles('#img2img_image input[type=file]', photo);
  await page.waitForTimeout(1000);
  await page.locator('#img2img_prompt textarea').fill('a woman in a space suit');
  await page.locator('#img2img_neg_prompt textarea').fill('blurry');
  await setNumber(page, '#img2img_steps', 4);
  await setNumber(page, '#img2img_width', 256);
  await setNumber(page, '#img2img_height', 256);
  await setNumber(page, '#img2img_seed', 1234);

  await page.locator(`${S}_enabled .label-wrap`).first().click();           // open the accordion = switch on
  await setCheck(page, `${S}_detail_only`, true);
  await page.locator(`${S}_p1_prompt textarea`).fill('[PROMPT], detailed face');
  await page.locator(`${S}_enabled .label-wrap`, { hasText: 'Inpaint' }).first().click();
  await setNumber(page, `${S}_p1_denoise`, 0.5);
  await setNumber(page, `${S}_p1_inpaint_width`, 256);
  await setNumber(page, `${S}_p1_inpaint_height`, 256);
  await page.waitForTimeout(1000);
  log('fields before the first generate:', JSON.stringify(await fields(page)));
  await page.screenshot({ path: `${outDir}/ui-accordion.png`, fullPage: true });
  const info = await generate(page, `${outDir}/ui-first.png`);
  log('first result info:', info.replace(/\n/g, ' | '));
  fs.writeFileSync(`${outDir}/ui-info.txt`, info);

  // Change the settings away from what the infotext says, then paste it back.
  await setNumber(page, `${S}_p1_denoise`, 0.3);
  await page.locator(`${S}_p1_prompt textarea`).fill('something else');
  await setCheck(page, `${S}_detail_only`, false);
  await page.locator(`${S}_enabled .label-wrap`).first().click();           // close = switch off
  await page.waitForTimeout(500);
  log('fields after changing them:', JSON.stringify(await fields(page)));
  const infotext = JSON.parse(await page.locator('#generation_info_img2img textarea').first().inputValue()).infotexts[0];
  await page.locator('#img2img_prompt textarea').fill(infotext);
  await page.locator('#img2img_tools #paste').click();
  await page.waitForTimeout(3000);
  const pasted = await fields(page);
  log('fields after paste:', JSON.stringify(pasted));
  fs.writeFileSync(`${outDir}/ui-fields.json`, JSON.stringify(pasted, null, 1));
  const info2 = await generate(page, `${outDir}/ui-pasted.png`);
  log('pasted result info:', info2.replace(/\n/g, ' | '));
  await page.screenshot({ path: `${outDir}/ui-done.png`, fullPage: true });
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
