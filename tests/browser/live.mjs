// The catalogue UI while the daemon works, in a real browser: a grid with the search box in use
// and a job page with its video playing stay as they are (no reload) while a new job arrives;
// the grid gains its card in place. Then the keyboard (`/`, arrows, Enter), a selection of
// both jobs (by keyboard and by mouse) downloaded as one zip into OUT_DIR/selection.zip, the
// 390 px layout, and screenshots at 1400 and 390 px into OUT_DIR.
//
// usage: node live.mjs ORIGIN OUT_DIR JOB_ID
// Prints {"step":"ready"} once the video plays, waits for a line on stdin (the test adds a job
// meanwhile), then prints one JSON line with what it saw; exits 1 on failure.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const [origin, outDir, jobId] = process.argv.slice(2);
const fail = (msg) => { console.error(`browser live: ${msg}`); process.exit(1); };
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((r) => lines.once('line', r));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--disable-sync', '--disable-quic', '--autoplay-policy=no-user-gesture-required',
         '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
});
try {
  const errors = [];
  const open = async (url, width) => {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.evaluate(() => { window.__kept = true; });
    return page;
  };
  const grid = await open(`${origin}/`, 1400);
  const before = await grid.locator('a.card').count();
  await grid.locator('input[name=q]').click();
  await grid.keyboard.type('fo');

  const job = await open(`${origin}/jobs/${jobId}`, 1400);
  await job.waitForFunction(() => document.querySelector('video#player')?.readyState >= 2, null, { timeout: 20000 })
    .catch(() => fail('the video did not load'));
  await job.evaluate(async () => {
    const v = document.querySelector('video#player');
    v.loop = true;
    window.__starts = 0;
    v.addEventListener('loadstart', () => { window.__starts += 1; });
    await v.play();
  });
  await job.waitForFunction(() => document.querySelector('video#player').currentTime > 0.3, null, { timeout: 10000 });
  console.log(JSON.stringify({ step: 'ready' }));
  await nextLine();

  // The new job's card arrives in place; the search box keeps its focus and its text.
  await grid.waitForFunction((n) => document.querySelectorAll('a.card').length > n, before, { timeout: 30000 })
    .catch(() => fail('the grid did not gain the new card in place'));
  const gridSeen = await grid.evaluate(() => ({
    kept: window.__kept === true,
    cards: document.querySelectorAll('a.card').length,
    focus: document.activeElement?.getAttribute('name'),
    typed: document.querySelector('input[name=q]').value,
  }));
  await job.waitForFunction(() => document.body.hasAttribute('data-refreshed'), null, { timeout: 30000 })
    .catch(() => fail('the job page never refreshed'));
  const jobSeen = await job.evaluate(() => {
    const v = document.querySelector('video#player');
    return { kept: window.__kept === true, paused: v.paused, time: v.currentTime, starts: window.__starts };
  });
  await grid.screenshot({ path: `${outDir}/grid-1400.png` });

  // Keyboard: `/` focuses the search, arrows move through the cards, Enter opens one.
  await grid.locator('input[name=q]').fill('');
  await grid.locator('h1, p').first().click();
  await grid.keyboard.press('/');
  const slash = await grid.evaluate(() => document.activeElement?.getAttribute('name'));
  await grid.locator('p').first().click();
  await grid.keyboard.press('ArrowRight');
  await grid.keyboard.press('ArrowRight');
  const second = await grid.evaluate(() => [...document.querySelectorAll('a.card')].indexOf(document.activeElement));
  const outline = await grid.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  await Promise.all([grid.waitForURL(/\/jobs\//), grid.keyboard.press('Enter')]);
  const opened = grid.url();

  // Select both jobs, the first by keyboard (Tab from its card to its checkbox, Space), the
  // second with the mouse, and download them as one zip. The selection survives a reload.
  await grid.goto(`${origin}/`);
  await grid.locator('a.card').first().focus();
  await grid.keyboard.press('Tab');
  const tabbed = await grid.evaluate(() => document.activeElement?.type);
  await grid.keyboard.press('Space');
  await grid.locator('.cell input[type=checkbox]').nth(1).click();
  await grid.reload();
  const selected = await grid.locator('form#zip output').textContent();
  const checked = await grid.locator('.cell input[type=checkbox]:checked').count();
  await grid.screenshot({ path: `${outDir}/selected-1400.png` });
  const [download] = await Promise.all([grid.waitForEvent('download', { timeout: 30000 }),
                                        grid.locator('form#zip button[type=submit]').click()]);
  await download.saveAs(`${outDir}/selection.zip`);
  const zip = { name: download.suggestedFilename(), failure: await download.failure(), tabbed, selected, checked };

  await grid.goto(`${origin}/?q=fox`);
  await grid.screenshot({ path: `${outDir}/search-1400.png` });
  await job.screenshot({ path: `${outDir}/job-1400.png` });

  // 390 px: nothing scrolls sideways.
  const narrow = await open(`${origin}/jobs/${jobId}`, 390);
  const jobOverflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await narrow.screenshot({ path: `${outDir}/job-390.png` });
  await narrow.goto(`${origin}/`);
  const gridOverflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await narrow.screenshot({ path: `${outDir}/grid-390.png` });
  await narrow.goto(`${origin}/?q=fox`);
  await narrow.screenshot({ path: `${outDir}/search-390.png` });

  if (errors.length) fail(`script errors: ${errors.join('; ')}`);
  console.log(JSON.stringify({ step: 'done', before, grid: gridSeen, job: jobSeen, slash, second, outline, opened,
                               jobOverflow, gridOverflow, zip }));
} finally {
  await browser.close();
  lines.close();
}
