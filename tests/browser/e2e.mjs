// The asset manager's path through the UI, in a real browser: open the grid, search for a word
// of one prompt, open that job, and check that its <video> loads and plays. Screenshots of the
// grid and the job page go to OUT_DIR. Prints one JSON line with what it saw; exits 1 on failure.
//
// usage: node e2e.mjs ORIGIN OUT_DIR WORD
import { chromium } from 'playwright-core';

const [origin, outDir, word] = process.argv.slice(2);
const fail = (msg) => { console.error(`browser e2e: ${msg}`); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--disable-sync', '--disable-quic', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${origin}/`);
  const all = await page.locator('a.card').count();
  await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 15000 })
    .catch(() => fail('the grid\'s cover thumbnails did not load'));
  await page.screenshot({ path: `${outDir}/grid.png`, fullPage: true });

  await page.fill('input[name=q]', word);
  await Promise.all([page.waitForURL(/[?&]q=/), page.click('button[type=submit]')]);
  const found = await page.locator('a.card').count();
  if (found !== 1) fail(`searching for "${word}" showed ${found} cards, not 1`);

  await Promise.all([page.waitForURL(/\/jobs\//), page.locator('a.card').first().click()]);
  await page.waitForFunction(() => document.querySelector('video#player')?.readyState >= 2, null, { timeout: 20000 })
    .catch(() => fail('the video did not load (readyState < 2)'));
  const video = await page.evaluate(async () => {
    const v = document.querySelector('video#player');
    const played = await v.play().then(() => true, (e) => String(e));
    await new Promise((r) => setTimeout(r, 700));
    v.pause();
    return { readyState: v.readyState, width: v.videoWidth, height: v.videoHeight, duration: v.duration,
             currentTime: v.currentTime, played };
  });
  await page.screenshot({ path: `${outDir}/job.png`, fullPage: true });
  if (errors.length) fail(`script errors: ${errors.join('; ')}`);
  console.log(JSON.stringify({ all, found, url: page.url(), ...video }));
} finally {
  await browser.close();
}
